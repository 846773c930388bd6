// FusedAddLayerNorm reference: runs the unfused reference kernels one after the other, Add then
// LayerNormalization over the last axis, on the tensors in their own dtype. S is rounded to X's dtype before
// the norm reads it, exactly as the graph the pass fused computed it (the GPU kernel normalizes the rounded
// sum too), so Y = LayerNorm(S) holds for the S this node writes.
#include "backends/cpu/executor.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_fused_add_layer_norm(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  ir::Node add;
  add.name = node.name + "/Add";
  add.op_type = "Add";
  add.inputs = {"x", "r"};
  add.outputs = {"s"};
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> sum, run_node(add, ctx.opset(), {&ctx.input(0), &ctx.input(1)}));
  ir::Node ln;
  ln.name = node.name + "/LayerNormalization";
  ln.op_type = "LayerNormalization";
  ln.inputs = {"s", "gamma"};
  std::vector<const Tensor*> ins = {&sum[0], &ctx.input(2)};
  if (ctx.has_input(3)) {
    ln.inputs.push_back("beta");
    ins.push_back(&ctx.input(3));
  }
  ln.outputs = {"y"};
  ln.attrs["axis"] = ir::Attribute::of_int(-1);
  ln.attrs["epsilon"] = ir::Attribute::of_float(node.attr_float("epsilon", 1e-5f));
  ln.attrs["stash_type"] = ir::Attribute::of_int(1);
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> y, run_node(ln, ctx.opset(), ins));
  ctx.set_output(0, std::move(y[0]));
  if (ctx.has_output(1)) ctx.set_output(1, std::move(sum[0]));
  return Status();
}

}  // namespace

void register_cpu_fused_add_layer_norm(KernelTable& t) {
  // Not widened here: the Add and LayerNormalization steps widen f16/bf16 themselves, and S must come out
  // rounded to X's dtype between them.
  t.add({"FusedAddLayerNorm", run_fused_add_layer_norm, false});
}

}  // namespace kiln::cpu
