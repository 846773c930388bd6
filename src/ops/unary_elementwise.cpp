// Unary elementwise ops and activations: same shape out, same dtype (bool for IsNaN/IsInf).
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_bool_out(InferContext& ctx) {
  ctx.set_output(0, DType::kBool, ctx.input_shape(0));
  return Status();
}

Status infer_float_only(InferContext& ctx) {
  if (!is_float(ctx.input_dtype(0)))
    return ctx.error("needs a float input, got {} (cast it first)", dtype_name(ctx.input_dtype(0)));
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_unary_elementwise(OpRegistry& r) {
  for (auto name : {"Abs", "Neg", "Sign", "Relu", "Floor", "Ceil", "Round", "BitwiseNot", "Not"})
    r.add({name, 1, 1, 1, 1, infer_same_as_input0});
  for (auto name : {"Exp", "Log", "Sqrt", "Reciprocal", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
                    "Asinh", "Acosh", "Atanh", "Erf", "Sigmoid", "Tanh", "Softplus", "Softsign", "LeakyRelu",
                    "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "ThresholdedRelu", "Shrink", "Gelu", "Mish"})
    r.add({name, 1, 1, 1, 1, infer_float_only});
  r.add({"IsNaN", 1, 1, 1, 1, infer_bool_out});
  r.add({"IsInf", 1, 1, 1, 1, infer_bool_out});
  r.add({"Clip", 1, 3, 1, 1, infer_same_as_input0});
}

}  // namespace kiln::ops
