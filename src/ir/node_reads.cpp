#include "ir/node_reads.h"

namespace kiln::ir {

namespace {
void subgraph_reads(const Graph& g, std::vector<std::string>& out) {
  for (const auto& n : g.nodes) {
    out.insert(out.end(), n.inputs.begin(), n.inputs.end());
    for (const auto& [k, a] : n.attrs)
      if (a.g) subgraph_reads(*a.g, out);
  }
  out.insert(out.end(), g.outputs.begin(), g.outputs.end());
}
}  // namespace

std::vector<std::string> node_reads(const Node& node) {
  std::vector<std::string> out = node.inputs;
  for (const auto& [k, a] : node.attrs)
    if (a.g) subgraph_reads(*a.g, out);
  return out;
}

}  // namespace kiln::ir
