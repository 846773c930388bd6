// ArgMax / ArgMin: int64 indices along one axis, keepdims, select_last_index.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_arg(InferContext& ctx) {
  if (ctx.input_dtype(0) == DType::kString) return ctx.unsupported("string tensors are not supported");
  const Shape& in = ctx.input_shape(0);
  if (!in.has_rank()) {
    ctx.set_output(0, DType::kI64, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  if (rank == 0) return ctx.error("needs an input of rank >= 1, got a scalar");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank));
  if (in[axis].is_static() && in[axis].value() == 0)
    return ctx.error("axis {} of input {} is empty: there is no element to pick", axis, in.to_string());
  const bool keepdims = ctx.node().attr_int("keepdims", 1) != 0;
  std::vector<Dim> out;
  for (int64_t i = 0; i < rank; ++i) {
    if (i != axis)
      out.push_back(in[i]);
    else if (keepdims)
      out.push_back(Dim(1));
  }
  ctx.set_output(0, DType::kI64, Shape(out));
  return Status();
}

}  // namespace

void register_arg_max_min(OpRegistry& r) {
  r.add({"ArgMax", 1, 1, 1, 1, infer_arg});
  r.add({"ArgMin", 1, 1, 1, 1, infer_arg});
}

}  // namespace kiln::ops
