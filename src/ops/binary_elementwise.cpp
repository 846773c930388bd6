// Binary and variadic elementwise ops with numpy broadcasting: arithmetic, comparison, logic, bit ops.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status check_same_dtype(InferContext& ctx) {
  DType t = DType::kUndefined;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    if (t == DType::kUndefined) t = ctx.input_dtype(i);
    else if (ctx.input_dtype(i) != t)
      return ctx.error("input {} ('{}') is {} but input 0 is {}; cast one side so both have the same dtype", i,
                       ctx.node().inputs[i], dtype_name(ctx.input_dtype(i)), dtype_name(t));
  }
  return Status();
}

Status infer_arith(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx));
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_inputs(ctx));
  ctx.set_output(0, ctx.input_dtype(0), std::move(s));
  return Status();
}

Status infer_compare(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx));
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_inputs(ctx));
  ctx.set_output(0, DType::kBool, std::move(s));
  return Status();
}

// Pow and BitShift allow the exponent's dtype to differ (Pow) or not (BitShift) — Pow is mixed.
Status infer_pow(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_inputs(ctx));
  ctx.set_output(0, ctx.input_dtype(0), std::move(s));
  return Status();
}

Status infer_prelu(InferContext& ctx) {
  // PRelu before opset 7 applies a 1-D slope per channel (axis 1), not numpy-style from the right.
  const Shape& x = ctx.input_shape(0);
  const Shape& slope = ctx.input_shape(1);
  if (ctx.opset() < 7 && x.has_rank() && x.rank() >= 2 && slope.has_rank() && slope.rank() == 1) {
    ctx.set_output(0, ctx.input_dtype(0), x);
    return Status();
  }
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_inputs(ctx));
  ctx.set_output(0, ctx.input_dtype(0), std::move(s));
  return Status();
}

}  // namespace

void register_binary_elementwise(OpRegistry& r) {
  for (auto name : {"Add", "Sub", "Mul", "Div", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"})
    r.add({name, 2, 2, 1, 1, infer_arith});
  for (auto name : {"And", "Or", "Xor"}) r.add({name, 2, 2, 1, 1, infer_compare});
  for (auto name : {"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"})
    r.add({name, 2, 2, 1, 1, infer_compare});
  r.add({"Pow", 2, 2, 1, 1, infer_pow});
  r.add({"PRelu", 2, 2, 1, 1, infer_prelu});
  for (auto name : {"Max", "Min", "Sum", "Mean"}) r.add({name, 1, -1, 1, 1, infer_arith});
}

}  // namespace kiln::ops
