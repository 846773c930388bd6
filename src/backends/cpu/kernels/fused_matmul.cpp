// FusedMatMul reference: runs the unfused reference kernels one after another (MatMul or Gemm, Add bias, Add
// residual, Relu/Gelu), so a fused graph gives what the graph it came from gave. f16/bf16 are widened once
// and narrowed once at the end (as the GPU epilogue does), not after every step.
#include "ops/fused_matmul.h"
#include "backends/cpu/executor.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

// Runs one reference op on the given inputs and returns its single output.
Result<Tensor> run_step(const KernelContext& ctx, ir::Node step, const std::vector<const Tensor*>& inputs) {
  step.name = ctx.node().name + "/" + step.op_type;
  for (size_t i = 0; i < inputs.size(); ++i) step.inputs.push_back(inputs[i] ? "in" + std::to_string(i) : "");
  step.outputs = {"out"};
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_node(step, ctx.opset(), inputs));
  return std::move(outs[0]);
}

ir::Node op_node(const char* op) {
  ir::Node n;
  n.op_type = op;
  return n;
}

Status run_fused_matmul(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  ops::MatMulActivation act = ops::MatMulActivation::kNone;
  if (!ops::parse_matmul_activation(node.attr_string("activation", "none"), &act))
    return ctx.error("unknown activation '{}'", node.attr_string("activation", "none"));
  const bool trans_b = node.attr_int("trans_b", 0) != 0;
  const float alpha = node.attr_float("alpha", 1.f);
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);

  Tensor y;
  if (!trans_b && alpha == 1.f) {
    // What the MatMul the pass fused computed, batch dims and all.
    KILN_ASSIGN_OR_RETURN(y, run_step(ctx, op_node("MatMul"), {&a, &b}));
  } else {
    // Gemm on the [M, K] view of A (batch dims folded into M), reshaped back.
    const int64_t k = a.dims().back();
    Tensor a2 = a.reshaped({num_elements({a.dims().begin(), a.dims().end() - 1}), k});
    ir::Node gemm = op_node("Gemm");
    gemm.attrs["transB"] = ir::Attribute::of_int(trans_b ? 1 : 0);
    gemm.attrs["alpha"] = ir::Attribute::of_float(alpha);
    KILN_ASSIGN_OR_RETURN(Tensor y2, run_step(ctx, gemm, {&a2, &b}));
    std::vector<int64_t> dims(a.dims().begin(), a.dims().end() - 1);
    dims.push_back(y2.dim(1));
    y = y2.reshaped(dims);
  }
  if (ctx.has_input(2)) {
    KILN_ASSIGN_OR_RETURN(y, run_step(ctx, op_node("Add"), {&y, &ctx.input(2)}));
  }
  if (ctx.has_input(3)) {
    if (ctx.input(3).dims() != y.dims())
      return ctx.error("residual {} must have the output's shape {}", ctx.input(3).describe(), y.describe());
    KILN_ASSIGN_OR_RETURN(y, run_step(ctx, op_node("Add"), {&y, &ctx.input(3)}));
  }
  if (act == ops::MatMulActivation::kRelu) {
    KILN_ASSIGN_OR_RETURN(y, run_step(ctx, op_node("Relu"), {&y}));
  } else if (act == ops::MatMulActivation::kGeluErf || act == ops::MatMulActivation::kGeluTanh) {
    ir::Node gelu = op_node("Gelu");
    gelu.attrs["approximate"] =
        ir::Attribute::of_string(act == ops::MatMulActivation::kGeluTanh ? "tanh" : "none");
    KILN_ASSIGN_OR_RETURN(y, run_step(ctx, gelu, {&y}));
  }
  ctx.set_output(0, std::move(y));
  return Status();
}

}  // namespace

void register_cpu_fused_matmul(KernelTable& t) {
  t.add({"FusedMatMul", run_fused_matmul});
}

}  // namespace kiln::cpu
