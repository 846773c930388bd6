#include "backends/cuda/kernel_coverage.h"

#include "backends/cuda/kernel_list.h"

namespace kiln::cuda {

std::vector<UncoveredNode> uncovered_nodes(const ir::Graph& g) {
  std::vector<UncoveredNode> out;
  const KernelTable& table = kernel_table();
  for (const ir::Node& node : g.nodes) {
    const KernelDef* k = table.find(node.op_type);
    if (!k) {
      out.push_back({node.op_type, "no CUDA kernel for " + node.op_type});
      continue;
    }
    std::vector<DType> dtypes;
    for (const auto& in : node.inputs) {
      if (in.empty()) {
        dtypes.push_back(DType::kUndefined);
        continue;
      }
      auto v = g.values.find(in);
      auto c = g.initializers.find(in);
      dtypes.push_back(c != g.initializers.end() ? c->second.dtype()
                       : v != g.values.end()     ? v->second.dtype
                                                 : DType::kUndefined);
    }
    if (k->supports && !k->supports(node, dtypes)) {
      std::string names;
      for (DType d : dtypes) names += (names.empty() ? "" : ", ") + std::string(dtype_name(d));
      // supports() looks at dtypes and attributes (modes, reductions), so name both sides of the question.
      out.push_back({node.op_type, "the CUDA kernel for " + node.op_type +
                                       " does not take this node (inputs " + names + "; or its attributes)"});
    }
  }
  return out;
}

}  // namespace kiln::cuda
