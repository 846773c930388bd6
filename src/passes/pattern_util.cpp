#include "passes/pattern_util.h"

#include <algorithm>
#include <cmath>

namespace kiln::passes {

namespace {

void subgraph_reads(const ir::Graph& g, std::set<std::string>& out) {
  for (const auto& n : g.nodes) {
    out.insert(n.inputs.begin(), n.inputs.end());
    for (const auto& [k, a] : n.attrs)
      if (a.g) subgraph_reads(*a.g, out);
  }
  out.insert(g.outputs.begin(), g.outputs.end());
}

// How far a stored constant may sit from the exact value: the rounding of its dtype, with some slack.
double tolerance(DType t) {
  switch (t) {
    case DType::kF16:
      return 2e-3;
    case DType::kBF16:
      return 1e-2;
    case DType::kF32:
      return 1e-6;
    case DType::kF64:
      return 1e-12;
    default:
      return 0.0;  // integers: exact
  }
}

}  // namespace

PatternGraph::PatternGraph(const ir::Graph& g) : g_(g) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& o : g.nodes[i].outputs)
      if (!o.empty()) producer_[o] = i;
    for (const auto& in : g.nodes[i].inputs) {
      if (in.empty()) continue;
      auto& c = consumers_[in];
      if (c.empty() || c.back() != i) c.push_back(i);
    }
    for (const auto& [k, a] : g.nodes[i].attrs)
      if (a.g) subgraph_reads(*a.g, external_);
  }
  external_.insert(g.outputs.begin(), g.outputs.end());
}

bool PatternGraph::producer(const std::string& v, size_t* i) const {
  auto it = producer_.find(v);
  if (it == producer_.end()) return false;
  *i = it->second;
  return true;
}

const std::vector<size_t>& PatternGraph::consumers(const std::string& v) const {
  static const std::vector<size_t> kNone;
  auto it = consumers_.find(v);
  return it == consumers_.end() ? kNone : it->second;
}

bool PatternGraph::sole_consumer(const std::string& v, size_t* i) const {
  const auto& c = consumers(v);
  if (c.size() != 1 || is_external(v)) return false;
  *i = c[0];
  return true;
}

bool PatternGraph::scalar_value(const std::string& v, double* out) const {
  auto it = g_.initializers.find(v);
  if (it == g_.initializers.end() || it->second.numel() != 1) return false;
  const DType t = it->second.dtype();
  if (t == DType::kBool || t == DType::kString || t == DType::kUndefined) return false;
  *out = it->second.get_as_double(0);
  return true;
}

bool PatternGraph::scalar_is(const std::string& v, double target) const {
  double value;
  if (!scalar_value(v, &value)) return false;
  return std::fabs(value - target) <= tolerance(g_.initializers.at(v).dtype()) * std::fabs(target);
}

bool PatternGraph::const_operand(size_t i, const char* op, double target, std::string* other) const {
  const ir::Node& n = node(i);
  if (n.op_type != op || n.inputs.size() != 2 || !n.domain.empty()) return false;
  for (int c = 0; c < 2; ++c)
    if (scalar_is(n.inputs[c], target)) {
      *other = n.inputs[1 - c];
      return true;
    }
  return false;
}

bool PatternGraph::binary_with_const(size_t i, const char* op, const std::string& operand, double target,
                                     std::string* out) const {
  std::string other;
  if (!const_operand(i, op, target, &other) || other != operand) return false;
  *out = node(i).outputs[0];
  return true;
}

bool PatternGraph::const_divisor(size_t i, double target, std::string* other) const {
  const ir::Node& n = node(i);
  if (n.op_type != "Div" || n.inputs.size() != 2 || !n.domain.empty() || !scalar_is(n.inputs[1], target))
    return false;
  *other = n.inputs[0];
  return true;
}

bool PatternGraph::only_used_within(const std::set<size_t>& chain, size_t last) const {
  for (size_t i : chain) {
    if (i == last) continue;
    for (const auto& o : node(i).outputs) {
      if (o.empty()) continue;
      if (is_external(o)) return false;
      for (size_t c : consumers(o))
        if (!chain.count(c)) return false;
    }
  }
  return true;
}

bool PatternGraph::constants_keep_shape(const std::set<size_t>& chain, const std::string& x) const {
  const ir::ValueInfo* xi = g_.value(x);
  if (!xi || !xi->shape.has_rank()) return false;
  for (size_t i : chain)
    for (const auto& in : node(i).inputs) {
      auto it = g_.initializers.find(in);
      if (it == g_.initializers.end() || in == x) continue;
      if (it->second.numel() != 1 || it->second.rank() > xi->shape.rank()) return false;
    }
  return true;
}

void erase_removed(ir::Graph& g, const std::vector<bool>& removed) {
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (i >= removed.size() || !removed[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
}

std::set<std::string> subgraph_read_names(const ir::Graph& g) {
  std::set<std::string> out;
  for (const auto& n : g.nodes)
    for (const auto& [k, a] : n.attrs)
      if (a.g) subgraph_reads(*a.g, out);
  return out;
}

}  // namespace kiln::passes
