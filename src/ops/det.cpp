// Det: determinants of the square matrices in the last two dims; output drops those dims.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_det(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input, got {}", dtype_name(dt));
  const Shape& in = ctx.input_shape(0);
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  if (in.rank() < 2) return ctx.error("needs square matrices [..., M, M], got {}", in.to_string());
  const Dim& m = in[in.rank() - 2];
  const Dim& k = in[in.rank() - 1];
  if (m.is_static() && k.is_static() && m.value() != k.value())
    return ctx.error("needs square matrices [..., M, M], got {}", in.to_string());
  ctx.set_output(0, dt, Shape(std::vector<Dim>(in.dims().begin(), in.dims().end() - 2)));
  return Status();
}

}  // namespace

void register_det(OpRegistry& r) {
  r.add({"Det", 1, 1, 1, 1, infer_det});
}

}  // namespace kiln::ops
