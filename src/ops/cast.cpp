// Cast and CastLike.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_cast(InferContext& ctx) {
  const int64_t to = ctx.node().attr_int("to", -1);
  auto dt = dtype_from_onnx(static_cast<int32_t>(to));
  if (!dt) return ctx.unsupported("cannot cast to ONNX type {} (supported: numeric and bool types)", to);
  if (*dt == DType::kString || ctx.input_dtype(0) == DType::kString)
    return ctx.unsupported("string tensors are not supported");
  ctx.set_output(0, *dt, ctx.input_shape(0));
  return Status();
}

Status infer_cast_like(InferContext& ctx) {
  ctx.set_output(0, ctx.input_dtype(1), ctx.input_shape(0));
  return Status();
}

}  // namespace

void register_cast(OpRegistry& r) {
  r.add({"Cast", 1, 1, 1, 1, infer_cast});
  r.add({"CastLike", 2, 2, 1, 1, infer_cast_like});
}

}  // namespace kiln::ops
