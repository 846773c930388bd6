// FusedMatMul (kiln domain): Y = act(alpha * (A @ op(B)) + bias + residual), made by fuse_matmul_epilogue
// from MatMul/Gemm → Add(bias) [→ Add(residual)] [→ Relu/Gelu]. A is [..., M, K] (batch dims fold into M), B
// a 2-D weight [K, N] ([N, K] when trans_b), bias [N], residual the shape of Y. The residual goes in before
// the activation because that is what one cuBLASLt call computes (D = act(alpha·A·B + C + bias)) and it
// matches the ResNet-style Add → Relu; the transformer chains (bias → residual, no activation) are the same
// either way.
#include "ops/fused_matmul.h"

#include "ops/op_table.h"

namespace kiln::ops {

namespace {

bool fused_matmul_dtype_ok(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64;
}

bool dims_conflict(const Dim& a, const Dim& b) {
  return a.is_static() && b.is_static() && a.value() != b.value();
}

Status infer_fused_matmul(InferContext& ctx) {
  const ir::Node& node = ctx.node();
  const DType dt = ctx.input_dtype(0);
  if (!fused_matmul_dtype_ok(dt))
    return ctx.error("dtype {} is not supported (f32, f16, bf16, f64)", dtype_name(dt));
  for (size_t i = 1; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && ctx.input_dtype(i) != dt)
      return ctx.error("input {} ('{}') is {} but A is {}; all inputs must have the same dtype", i,
                       node.inputs[i], dtype_name(ctx.input_dtype(i)), dtype_name(dt));
  const std::string act = node.attr_string("activation", "none");
  MatMulActivation parsed;
  if (!parse_matmul_activation(act, &parsed))
    return ctx.error("activation '{}' is not one of none, relu, gelu_erf, gelu_tanh", act);
  const bool trans_b = node.attr_int("trans_b", 0) != 0;
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  if (b.has_rank() && b.rank() != 2) return ctx.error("B must be a 2-D weight, got {}", b.to_string());
  if (a.has_rank() && a.rank() < 2) return ctx.error("A must be at least 2-D, got {}", a.to_string());
  Dim n, kb;
  if (b.has_rank()) n = b[trans_b ? 0 : 1], kb = b[trans_b ? 1 : 0];
  if (!a.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
  } else {
    const Dim& ka = a[a.rank() - 1];
    if (dims_conflict(ka, kb))
      return ctx.error("inner dims differ: A {} has K={} but B {} (trans_b={}) has K={}", a.to_string(),
                       ka.value(), b.to_string(), trans_b ? 1 : 0, kb.value());
    std::vector<Dim> out(a.dims().begin(), a.dims().end() - 1);
    out.push_back(n);
    ctx.set_output(0, dt, Shape(out));
  }
  if (ctx.has_input(2)) {
    const Shape& bias = ctx.input_shape(2);
    if (bias.has_rank() && (bias.rank() != 1 || dims_conflict(bias[0], n)))
      return ctx.error("bias must be [N] = [{}], got {}", n.to_string(), bias.to_string());
  }
  if (ctx.has_input(3) && a.has_rank()) {
    // No broadcasting: the pass only fuses residuals whose shape is provably Y's, and run time checks it
    // here.
    const Shape& r = ctx.input_shape(3);
    const Shape& y = ctx.outputs()[0].shape;
    bool bad = r.has_rank() && r.rank() != y.rank();
    for (size_t i = 0; !bad && r.has_rank() && i < r.rank(); ++i) bad = dims_conflict(r[i], y[i]);
    if (bad) return ctx.error("residual {} must have the output's shape {}", r.to_string(), y.to_string());
  }
  return Status();
}

}  // namespace

void register_fused_matmul(OpRegistry& r) {
  OpDef def{"FusedMatMul", 2, 4, 1, 1, infer_fused_matmul};
  def.domain = kKilnDomain;
  r.add(def);
}

}  // namespace kiln::ops
