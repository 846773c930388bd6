// Where: picks X where the condition holds, else Y, broadcasting all three.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_where(InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kBool)
    return ctx.error("the condition must be bool, got {}", dtype_name(ctx.input_dtype(0)));
  if (ctx.input_dtype(1) != ctx.input_dtype(2))
    return ctx.error("X is {} but Y is {}; both must have the same dtype", dtype_name(ctx.input_dtype(1)),
                     dtype_name(ctx.input_dtype(2)));
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_inputs(ctx));
  ctx.set_output(0, ctx.input_dtype(1), std::move(s));
  return Status();
}

}  // namespace

void register_where(OpRegistry& r) { r.add({"Where", 3, 3, 1, 1, infer_where}); }

}  // namespace kiln::ops
