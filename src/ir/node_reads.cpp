#include "ir/node_reads.h"

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

}  // namespace kiln::ir
