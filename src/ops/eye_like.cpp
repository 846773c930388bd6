// EyeLike: a 2-D tensor of the input's shape with ones on diagonal k; dtype from 'dtype' or the input.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_eye_like(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank() && in.rank() != 2) return ctx.error("input must be 2-D, got {}", in.to_string());
  DType dt = ctx.input_dtype(0);
  if (ctx.node().has_attr("dtype")) {
    const int64_t t = ctx.node().attr_int("dtype", 0);
    auto d = dtype_from_onnx(static_cast<int32_t>(t));
    if (!d || *d == DType::kString) return ctx.unsupported("dtype {} is not supported", t);
    dt = *d;
  }
  ctx.set_output(0, dt, in.has_rank() ? in : Shape(std::vector<Dim>(2, Dim::unknown())));
  return Status();
}

}  // namespace

void register_eye_like(OpRegistry& r) { r.add({"EyeLike", 1, 1, 1, 1, infer_eye_like}); }

}  // namespace kiln::ops
