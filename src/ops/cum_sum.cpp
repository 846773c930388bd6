// CumSum along the axis given as a scalar input; exclusive and reverse attributes.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_cum_sum(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (dt == DType::kBool || dt == DType::kString)
    return ctx.error("needs a numeric input, got {}", dtype_name(dt));
  if (ctx.input_dtype(1) != DType::kI32 && ctx.input_dtype(1) != DType::kI64)
    return ctx.error("input 'axis' must be int32 or int64, got {}", dtype_name(ctx.input_dtype(1)));
  const Shape& axis_shape = ctx.input_shape(1);
  if (axis_shape.is_static() && num_elements(axis_shape.static_dims()) != 1)
    return ctx.error("input 'axis' must hold one value, got shape {}", axis_shape.to_string());
  const Shape& in = ctx.input_shape(0);
  std::vector<int64_t> axis;
  if (in.has_rank() && constant_ints(ctx, 1, axis) && axis.size() == 1) {
    if (in.rank() == 0) return ctx.error("needs an input of rank >= 1, got a scalar");
    KILN_RETURN_IF_ERROR(normalize_axis(ctx, axis[0], static_cast<int64_t>(in.rank())).status());
  }
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_cum_sum(OpRegistry& r) {
  r.add({"CumSum", 2, 2, 1, 1, infer_cum_sum});
}

}  // namespace kiln::ops
