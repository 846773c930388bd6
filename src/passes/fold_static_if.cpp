// An If whose condition is a constant (a weight, or a value folding made constant from static shapes) becomes
// the nodes of the branch it takes: only that branch is compiled, nothing is read back at run time, and the
// engine keeps one CUDA graph. A data-dependent If is left for the executor.
#include <set>

#include "passes/pass.h"

namespace kiln::passes {

namespace {

using Renames = std::map<std::string, std::string>;

// Names a body defines: its inputs, initializers and node outputs (reads of these are not outer reads).
std::set<std::string> defined_in(const ir::Graph& body) {
  std::set<std::string> d(body.inputs.begin(), body.inputs.end());
  for (const auto& [name, t] : body.initializers) d.insert(name);
  for (const auto& n : body.nodes) d.insert(n.outputs.begin(), n.outputs.end());
  return d;
}

std::string renamed(const Renames& r, const std::string& name) {
  auto it = r.find(name);
  return it == r.end() ? name : it->second;
}

// Applies `r` to a nested body's reads of its enclosing scope (a body's own names shadow them), on a copy: the
// attribute's graph may be shared with other nodes.
std::shared_ptr<ir::Graph> rename_outer_reads(const ir::Graph& body, Renames r) {
  for (const auto& name : defined_in(body)) r.erase(name);
  auto copy = std::make_shared<ir::Graph>(body);
  if (r.empty()) return copy;
  for (auto& n : copy->nodes) {
    for (auto& in : n.inputs) in = renamed(r, in);
    for (auto& [key, a] : n.attrs)
      if (a.g) a.g = rename_outer_reads(*a.g, r);
  }
  for (auto& out : copy->outputs) out = renamed(r, out);
  return copy;
}

// Every name the graph uses at its own level, so a branch's names can be kept apart from them.
std::set<std::string> names_in(const ir::Graph& g) {
  std::set<std::string> s(g.inputs.begin(), g.inputs.end());
  s.insert(g.outputs.begin(), g.outputs.end());
  for (const auto& [name, v] : g.values) s.insert(name);
  for (const auto& [name, t] : g.initializers) s.insert(name);
  for (const auto& n : g.nodes) {
    s.insert(n.inputs.begin(), n.inputs.end());
    s.insert(n.outputs.begin(), n.outputs.end());
  }
  return s;
}

std::string fresh(std::set<std::string>& taken, const std::string& base) {
  std::string name = base;
  for (int i = 1; taken.count(name); ++i) name = base + "_" + std::to_string(i);
  taken.insert(name);
  return name;
}

// The taken branch's attribute name, or null when the node is not an If this pass can fold.
const char* static_branch_key(const ir::Graph& g, const ir::Node& n) {
  if (n.op_type != "If" || !n.domain.empty() || n.inputs.empty() || !g.is_constant(n.inputs[0])) return nullptr;
  const Tensor& cond = g.initializers.at(n.inputs[0]);
  if (cond.numel() != 1) return nullptr;  // the executor reports a bad condition with its shape
  const char* key = cond.get_as_double(0) != 0 ? "then_branch" : "else_branch";
  const ir::Attribute* a = n.attr(key);
  if (!a || !a->g || a->g->outputs.size() != n.outputs.size() || !a->g->inputs.empty()) return nullptr;
  return key;
}

// The branch's nodes with its names made unique in g, then one Identity per If output (remove_identities drops
// them where the names are free to change).
void inline_branch(ir::Graph& g, const ir::Node& iff, const ir::Graph& branch, std::set<std::string>& taken,
                   std::set<std::string>& node_names, std::vector<ir::Node>& out) {
  Renames r;
  for (const auto& name : defined_in(branch))
    if (!name.empty()) r[name] = taken.count(name) ? fresh(taken, iff.name + "/" + name) : (taken.insert(name), name);
  for (const auto& [name, t] : branch.initializers) {
    g.initializers[r.at(name)] = t;
    g.values[r.at(name)] = {t.dtype(), Shape::from_dims(t.dims())};
  }
  for (const auto& [name, v] : branch.values)
    if (r.count(name)) g.values[r.at(name)] = v;
  for (ir::Node n : branch.nodes) {
    for (auto& in : n.inputs) in = renamed(r, in);
    for (auto& o : n.outputs) o = renamed(r, o);
    for (auto& [key, a] : n.attrs)
      if (a.g) a.g = rename_outer_reads(*a.g, r);
    n.name = fresh(node_names, n.name.empty() ? iff.name + "/" + n.op_type : n.name);
    out.push_back(std::move(n));
  }
  for (size_t i = 0; i < iff.outputs.size(); ++i) {
    if (iff.outputs[i].empty()) continue;
    ir::Node id;
    id.name = fresh(node_names, iff.name + "/output_" + std::to_string(i));
    id.op_type = "Identity";
    id.inputs = {renamed(r, branch.outputs[i])};
    id.outputs = {iff.outputs[i]};
    out.push_back(std::move(id));
  }
}

}  // namespace

Status fold_static_if(ir::Graph& g) {
  std::set<std::string> taken = names_in(g);
  std::set<std::string> node_names;
  for (const auto& n : g.nodes) node_names.insert(n.name);
  std::vector<ir::Node> out;
  out.reserve(g.nodes.size());
  for (auto& n : g.nodes) {
    if (const char* key = static_branch_key(g, n)) {
      inline_branch(g, n, *n.attr(key)->g, taken, node_names, out);
      // The If is gone from the engine; kiln inspect reads what became of it here (the engine keeps metadata).
      g.metadata[std::string(kFoldedIfKey) + n.name] = std::string(key) + "\t" + n.inputs[0];
    } else {
      out.push_back(std::move(n));
    }
  }
  g.nodes = std::move(out);
  return Status();
}

}  // namespace kiln::passes
