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

bool PatternGraph::plain(size_t i, const char* op, size_t inputs) const {
  const ir::Node& n = g_.nodes[i];
  return n.op_type == op && n.domain.empty() && n.inputs.size() == inputs && n.outputs.size() == 1;
}

bool PatternGraph::square_of(size_t i, std::string* x) const {
  const ir::Node& n = g_.nodes[i];
  if (plain(i, "Pow", 2) && scalar_is(n.inputs[1], 2.0)) {
    *x = n.inputs[0];
    return true;
  }
  if (plain(i, "Mul", 2) && n.inputs[0] == n.inputs[1]) {
    *x = n.inputs[0];
    return true;
  }
  return false;
}

bool PatternGraph::kept_reduce_axes(const ir::Node& n, std::vector<int64_t>* axes) const {
  if (n.attr_int("keepdims", 1) != 1) return false;
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    if (!g_.is_constant(n.inputs[1])) return false;
    *axes = g_.initializers.at(n.inputs[1]).to_int_vector();
  } else {
    *axes = n.attr_ints("axes");
  }
  return true;
}

bool none_removed(const std::set<size_t>& chain, const std::vector<bool>& removed) {
  for (size_t i : chain)
    if (removed[i]) return false;
  return true;
}

void replace_chain(ir::Graph& g, const std::set<size_t>& chain, size_t last, ir::Node n,
                   std::vector<bool>& removed) {
  for (size_t i : chain)
    if (i != last) {
      removed[i] = true;
      for (const auto& o : g.nodes[i].outputs) g.values.erase(o);
    }
  g.nodes[last] = std::move(n);
}

std::string add_constant(ir::Graph& g, const std::string& base, Tensor t) {
  const std::string name = g.unique_name(base);
  g.values[name] = {t.dtype(), Shape::from_dims(t.dims())};
  g.initializers[name] = std::move(t);
  return name;
}

Tensor float_ones(DType dt, int64_t n) {
  Tensor t(dt, {n});
  for (int64_t i = 0; i < n; ++i) {
    switch (dt) {
      case DType::kF32:
        t.data<float>()[i] = 1.f;
        break;
      case DType::kF64:
        t.data<double>()[i] = 1.0;
        break;
      case DType::kF16:
        t.data<uint16_t>()[i] = 0x3C00;  // 1.0 in IEEE half
        break;
      case DType::kBF16:
        t.data<uint16_t>()[i] = 0x3F80;  // 1.0 in bfloat16
        break;
      default:
        break;
    }
  }
  return t;
}

}  // namespace kiln::passes
