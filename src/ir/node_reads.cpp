#include "ir/node_reads.h"

#include <map>
#include <set>

namespace kiln::ir {

namespace {
// The names `body` reads that it does not define (a nested body's free names count as reads of `body`).
void free_names(const Graph& body, std::set<std::string>& out) {
  std::set<std::string> defined(body.inputs.begin(), body.inputs.end());
  for (const auto& [name, t] : body.initializers) defined.insert(name);
  for (const auto& n : body.nodes)
    for (const auto& o : n.outputs) defined.insert(o);
  auto note = [&](const std::string& v) {
    if (!v.empty() && !defined.count(v)) out.insert(v);
  };
  for (const auto& n : body.nodes) {
    for (const auto& in : n.inputs) note(in);
    for (const auto& v : outer_scope_reads(n)) note(v);
  }
  for (const auto& o : body.outputs) note(o);  // a body may return an outer value as it is
}
}  // namespace

std::vector<std::string> outer_scope_reads(const Node& node) {
  std::set<std::string> out;
  for (const auto& [key, a] : node.attrs)
    if (a.g) free_names(*a.g, out);
  return {out.begin(), out.end()};
}

std::vector<std::string> node_reads(const Node& node) {
  std::vector<std::string> out = node.inputs;
  for (auto& v : outer_scope_reads(node)) out.push_back(std::move(v));
  return out;
}

std::vector<std::vector<std::string>> release_after(const Graph& g) {
  std::map<std::string, size_t> last_use;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& in : node_reads(g.nodes[i]))
      if (!in.empty()) last_use[in] = i;
  std::set<std::string> keep(g.outputs.begin(), g.outputs.end());
  std::vector<std::vector<std::string>> release(g.nodes.size());
  for (const auto& [name, i] : last_use)
    if (!keep.count(name) && !g.is_constant(name)) release[i].push_back(name);
  return release;
}

}  // namespace kiln::ir
