#include "backends/cpu/executor.h"
#include "passes/pass.h"

namespace kiln::passes {

namespace {
// Folding bigger results would bloat the engine (e.g. a ConstantOfShape of a whole activation).
constexpr int64_t kMaxFoldedElements = 1 << 22;
}  // namespace

Status fold_constants(ir::Graph& g) {
  std::vector<ir::Node> kept;
  for (auto& n : g.nodes) {
    bool all_const = true;
    for (const auto& in : n.inputs)
      if (!in.empty() && !g.is_constant(in)) all_const = false;
    // Control flow and ops whose result is not a function of their inputs are never folded.
    const bool foldable = all_const && n.op_type != "If" && n.op_type != "Loop" && n.op_type != "Scan" &&
                          n.op_type.rfind("Random", 0) != 0 && n.op_type != "Bernoulli";
    if (!foldable) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<const Tensor*> ins(n.inputs.size(), nullptr);
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (!n.inputs[i].empty()) ins[i] = &g.initializers.at(n.inputs[i]);
    auto outs = cpu::run_node(n, g.opset, ins);
    bool too_big = false;
    if (outs.ok())
      for (const auto& t : *outs) too_big |= t.defined() && t.numel() > kMaxFoldedElements;
    if (!outs.ok() || too_big) {
      // Errors surface at run time with full context; folding is only an optimisation.
      kept.push_back(std::move(n));
      continue;
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (n.outputs[i].empty()) continue;
      g.values[n.outputs[i]] = {(*outs)[i].dtype(), Shape::from_dims((*outs)[i].dims())};
      g.initializers[n.outputs[i]] = std::move((*outs)[i]);
    }
  }
  g.nodes = std::move(kept);
  return Status();
}

}  // namespace kiln::passes
