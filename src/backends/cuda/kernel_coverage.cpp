#include "backends/cuda/kernel_coverage.h"

#include "backends/cuda/kernel_list.h"

namespace kiln::cuda {

namespace {

// A value's dtype in g or, for a body, in the graphs that enclose it.
DType dtype_in(const std::vector<const ir::Graph*>& scopes, const std::string& name) {
  for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
    const ir::Graph& g = **it;
    if (auto c = g.initializers.find(name); c != g.initializers.end()) return c->second.dtype();
    if (auto v = g.values.find(name); v != g.values.end() && v->second.dtype != DType::kUndefined) return v->second.dtype;
  }
  return DType::kUndefined;
}

void collect(std::vector<const ir::Graph*>& scopes, std::vector<UncoveredNode>& out) {
  const ir::Graph& g = *scopes.back();
  const KernelTable& table = kernel_table();
  for (const ir::Node& node : g.nodes) {
    const bool control_flow = node.domain.empty() && (node.op_type == "If" || node.op_type == "Loop" || node.op_type == "Scan");
    if (control_flow) {
      // The executor runs the bodies node by node (Scan-8 excepted): they are covered when their nodes are.
      if (node.op_type == "Scan" && scopes.front()->opset < 9) {
        out.push_back({node.op_type, "Scan before opset 9 runs on the CPU reference"});
        continue;
      }
      for (const auto& [key, attr] : node.attrs)
        if (attr.g) {
          scopes.push_back(attr.g.get());
          collect(scopes, out);
          scopes.pop_back();
        }
      continue;
    }
    const KernelDef* k = table.find(node.op_type);
    if (!k) {
      // Without inputs (a Constant in a body) the node is host work, not a fallback.
      if (node.inputs.empty()) continue;
      out.push_back({node.op_type, "no CUDA kernel for " + node.op_type});
      continue;
    }
    std::vector<DType> dtypes;
    for (const auto& in : node.inputs) dtypes.push_back(in.empty() ? DType::kUndefined : dtype_in(scopes, in));
    if (k->supports && !k->supports(node, dtypes)) {
      std::string names;
      for (DType d : dtypes) names += (names.empty() ? "" : ", ") + std::string(dtype_name(d));
      // supports() looks at dtypes and attributes (modes, reductions), so name both sides of the question.
      out.push_back({node.op_type, "the CUDA kernel for " + node.op_type +
                                       " does not take this node (inputs " + names + "; or its attributes)"});
    }
  }
}

}  // namespace

std::vector<UncoveredNode> uncovered_nodes(const ir::Graph& g) {
  std::vector<UncoveredNode> out;
  std::vector<const ir::Graph*> scopes{&g};
  collect(scopes, out);
  return out;
}

}  // namespace kiln::cuda
