#include <set>

#include "passes/pass.h"

namespace kiln::passes {

namespace {

bool is_noop(const ir::Graph& g, const ir::Node& n) {
  if (n.op_type == "Identity") return true;
  if (n.op_type == "Dropout") {
    // Mask output consumed, or training_mode possibly on: keep it.
    if (n.outputs.size() > 1 && !n.outputs[1].empty()) return false;
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) return false;
    return true;
  }
  const ir::ValueInfo* in = n.inputs.empty() ? nullptr : g.value(n.inputs[0]);
  const ir::ValueInfo* out = n.outputs.empty() ? nullptr : g.value(n.outputs[0]);
  if (!in || !out) return false;
  if (n.op_type == "Cast") return in->dtype != DType::kUndefined && in->dtype == out->dtype;
  if (n.op_type == "Reshape" || n.op_type == "Expand" || n.op_type == "Squeeze" || n.op_type == "Unsqueeze" ||
      n.op_type == "Flatten")
    return in->shape.is_static() && in->shape == out->shape;
  return false;
}

}  // namespace

namespace {
void names_read_by_subgraphs(const ir::Graph& g, bool inside, std::set<std::string>& out) {
  for (const auto& n : g.nodes) {
    if (inside) out.insert(n.inputs.begin(), n.inputs.end());
    for (const auto& [k, a] : n.attrs)
      if (a.g) {
        names_read_by_subgraphs(*a.g, true, out);
        out.insert(a.g->outputs.begin(), a.g->outputs.end());
      }
  }
}
}  // namespace

Status remove_identities(ir::Graph& g) {
  // Values a subgraph body reads by name, and graph outputs, must keep their names: their producers stay.
  std::set<std::string> graph_outputs(g.outputs.begin(), g.outputs.end());
  names_read_by_subgraphs(g, false, graph_outputs);
  std::map<std::string, std::string> replace;  // removed output -> its source
  auto resolve = [&](std::string v) {
    for (auto it = replace.find(v); it != replace.end(); it = replace.find(v)) v = it->second;
    return v;
  };
  std::vector<ir::Node> kept;
  for (auto& n : g.nodes) {
    for (auto& in : n.inputs)
      if (!in.empty()) in = resolve(in);
    if (is_noop(g, n) && !graph_outputs.count(n.outputs[0])) {
      replace[n.outputs[0]] = n.inputs[0];
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  return Status();
}

}  // namespace kiln::passes
