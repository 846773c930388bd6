#include "backends/cuda/kernel_coverage.h"

#include <map>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/placement.h"
#include "ops/body_inputs.h"
#include "ops/op.h"

namespace kiln::cuda {

namespace {

// A graph being checked and, for a body, the types its values get as the walk infers them (bodies carry few
// value infos of their own).
struct Scope {
  const ir::Graph* g;
  std::map<std::string, ir::ValueInfo> typed;
};

// A value's type in the innermost scope that knows it; null when none does.
const ir::ValueInfo* info_in(std::vector<Scope>& scopes, const std::string& name, const Tensor** constant) {
  *constant = nullptr;
  for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
    if (auto t = it->typed.find(name); t != it->typed.end()) return &t->second;
    if (auto c = it->g->initializers.find(name); c != it->g->initializers.end()) {
      *constant = &c->second;
      return &(it->typed[name] = ir::ValueInfo{c->second.dtype(), Shape::from_dims(c->second.dims())});
    }
    if (auto v = it->g->values.find(name); v != it->g->values.end() && v->second.dtype != DType::kUndefined)
      return &v->second;
  }
  return nullptr;
}

void collect(std::vector<Scope>& scopes, std::vector<UncoveredNode>& out) {
  const ir::Graph& g = *scopes.back().g;
  const KernelTable& table = kernel_table();
  for (const ir::Node& node : g.nodes) {
    std::vector<ir::ValueInfo> infos(node.inputs.size());
    std::vector<const ir::ValueInfo*> info_ptrs(node.inputs.size(), nullptr);
    std::vector<DType> dtypes;
    const Tensor* constant = nullptr;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const ir::ValueInfo* v = node.inputs[k].empty() ? nullptr : info_in(scopes, node.inputs[k], &constant);
      if (v) infos[k] = *v;
      if (!node.inputs[k].empty()) info_ptrs[k] = &infos[k];
      dtypes.push_back(v ? v->dtype : DType::kUndefined);
    }
    // Types for later nodes, as the executor's run would find them (a graph fresh from the importer, and bodies,
    // carry few value infos).
    const auto outputs = ops::infer_outputs(
        node, g.opset, [&](const std::string& n) { return info_in(scopes, n, &constant); },
        [&](const std::string& n) {
          info_in(scopes, n, &constant);
          return constant;
        });
    if (outputs)
      for (size_t k = 0; k < node.outputs.size() && k < outputs->size(); ++k)
        if (!node.outputs[k].empty()) scopes.back().typed[node.outputs[k]] = (*outputs)[k];
    if (is_control_flow(node)) {
      // The executor runs the bodies node by node (Scan-8 excepted): they are covered when their nodes are.
      if (cpu_only_control_flow(node, scopes.front().g->opset)) {
        out.push_back({node.op_type, "Scan before opset 9 runs on the CPU reference"});
        continue;
      }
      for (const auto& [key, attr] : node.attrs)
        if (attr.g) {
          scopes.push_back({attr.g.get(), ops::body_input_types(node, *attr.g, info_ptrs)});
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
  std::vector<Scope> scopes{{&g, {}}};
  collect(scopes, out);
  return out;
}

}  // namespace kiln::cuda
