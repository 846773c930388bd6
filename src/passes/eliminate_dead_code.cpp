#include <set>

#include "passes/pass.h"

namespace kiln::passes {

namespace {
// Subgraph bodies may read outer values by name.
void collect_subgraph_reads(const ir::Graph& g, std::set<std::string>& used) {
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) used.insert(in);
    for (const auto& [k, a] : n.attrs)
      if (a.g) collect_subgraph_reads(*a.g, used);
  }
}
}  // namespace

Status eliminate_dead_code(ir::Graph& g) {
  std::set<std::string> live(g.outputs.begin(), g.outputs.end());
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const auto& n = g.nodes[i];
    bool needed = false;
    for (const auto& o : n.outputs) needed |= !o.empty() && live.count(o);
    if (!needed) continue;
    keep[i] = true;
    for (const auto& in : n.inputs) live.insert(in);
    for (const auto& [k, a] : n.attrs)
      if (a.g) collect_subgraph_reads(*a.g, live);
  }
  std::vector<ir::Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (keep[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  for (auto it = g.initializers.begin(); it != g.initializers.end();)
    it = live.count(it->first) ? std::next(it) : g.initializers.erase(it);
  std::set<std::string> referenced(live.begin(), live.end());
  referenced.insert(g.inputs.begin(), g.inputs.end());
  for (auto it = g.values.begin(); it != g.values.end();)
    it = referenced.count(it->first) ? std::next(it) : g.values.erase(it);
  return Status();
}

}  // namespace kiln::passes
