// Recognises LayerNorm written out (torch's exports before opset 17, converters from other frameworks) and
// replaces the chain by one LayerNormalization, which the GPU runs as one row kernel accumulating in f32
// instead of seven to nine kernels with f16 intermediates:
//   m = ReduceMean(x, trailing axes, keepdims=1);   d = x - m
//   v = ReduceMean(Pow(d, 2) | Mul(d, d), the same axes, keepdims=1)
//   n = d / Sqrt(v + eps)   or   d * Reciprocal(Sqrt(v + eps))
//   [y = n * gamma]  [y = y + beta]   constants that broadcast over the normalized dims only, either order
// The axes come from the attribute (opset < 18) or a constant input (opset 18+) and must be the last k axes;
// axis becomes -k. Only when every intermediate is read inside the chain alone (and is no graph output) and
// eps is a one-element constant. Without gamma the Scale is a one-element constant 1 (the op requires one).
//
// It runs before fuse_rms_norm: the variance half of this chain (d / Sqrt(ReduceMean(d^2) + eps)) is an
// RMSNorm of d, which that pass would otherwise take, leaving the Sub and the mean outside.
#include <algorithm>
#include <cmath>
#include <set>

#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

struct LnMatch {
  std::string x, scale, bias;  // scale, bias: empty when the chain has none
  double eps = 0;
  int64_t first = 0;  // first normalized axis (non-negative)
  size_t last = 0;
  std::set<size_t> nodes;
};

class LnMatcher {
 public:
  LnMatcher(const ir::Graph& g, const PatternGraph& p) : g_(g), p_(p) {}

  // The chain whose first ReduceMean (the mean of x) is node r.
  bool match(size_t r, LnMatch& m) {
    m = LnMatch();
    const ir::Node& mean = p_.node(r);
    if (mean.op_type != "ReduceMean" || !mean.domain.empty() || mean.inputs.empty() ||
        mean.outputs.size() != 1)
      return false;
    m.x = mean.inputs[0];
    const ir::ValueInfo* xv = g_.value(m.x);
    if (!xv || !is_float(xv->dtype) || !xv->shape.has_rank() || xv->shape.rank() == 0) return false;
    const int64_t rank = static_cast<int64_t>(xv->shape.rank());
    if (!trailing_axes(mean, rank, &m.first)) return false;
    m.nodes.insert(r);
    // d = x - mean, read by the square and by the normalizing Div/Mul (two distinct nodes).
    size_t sub;
    if (!p_.sole_consumer(mean.outputs[0], &sub) || !plain(sub, "Sub", 2)) return false;
    const ir::Node& sn = p_.node(sub);
    if (sn.inputs[0] != m.x || sn.inputs[1] != mean.outputs[0]) return false;
    const std::string& d = sn.outputs[0];
    const auto& readers = p_.consumers(d);
    if (readers.size() != 2 || p_.is_external(d)) return false;
    size_t sq = readers[0], norm = readers[1];
    if (!square_of(sq, d)) std::swap(sq, norm);
    if (!square_of(sq, d)) return false;
    m.nodes.insert(sub);
    m.nodes.insert(sq);
    // v = ReduceMean(d^2) over the same axes, + eps, Sqrt.
    size_t var;
    int64_t var_first;
    if (!p_.sole_consumer(p_.node(sq).outputs[0], &var) || p_.node(var).op_type != "ReduceMean" ||
        !p_.node(var).domain.empty() || p_.node(var).inputs.empty() || p_.node(var).outputs.size() != 1 ||
        !trailing_axes(p_.node(var), rank, &var_first) || var_first != m.first)
      return false;
    m.nodes.insert(var);
    size_t add;
    if (!p_.sole_consumer(p_.node(var).outputs[0], &add) || !plain(add, "Add", 2)) return false;
    const ir::Node& an = p_.node(add);
    const std::string& eps = an.inputs[0] == p_.node(var).outputs[0] ? an.inputs[1] : an.inputs[0];
    if (!p_.scalar_value(eps, &m.eps) || !(m.eps >= 0) || !std::isfinite(m.eps)) return false;
    m.nodes.insert(add);
    size_t root;
    if (!p_.sole_consumer(an.outputs[0], &root) || !plain(root, "Sqrt", 1)) return false;
    m.nodes.insert(root);
    // d / root, or d * Reciprocal(root): the normalizing node must be d's other reader.
    const std::string& root_out = p_.node(root).outputs[0];
    size_t next;
    if (!p_.sole_consumer(root_out, &next)) return false;
    if (next == norm && plain(norm, "Div", 2) && p_.node(norm).inputs[0] == d &&
        p_.node(norm).inputs[1] == root_out) {
      m.nodes.insert(norm);
    } else if (plain(next, "Reciprocal", 1)) {
      const std::string& rec = p_.node(next).outputs[0];
      size_t mul;
      if (!p_.sole_consumer(rec, &mul) || mul != norm || !plain(norm, "Mul", 2)) return false;
      const ir::Node& mn = p_.node(norm);
      if (!((mn.inputs[0] == d && mn.inputs[1] == rec) || (mn.inputs[1] == d && mn.inputs[0] == rec)))
        return false;
      m.nodes.insert({next, norm});
    } else {
      return false;
    }
    m.last = norm;
    std::string out = p_.node(norm).outputs[0];
    // Optional * gamma, then optional + beta.
    size_t k;
    if (p_.sole_consumer(out, &k) && plain(k, "Mul", 2)) {
      const ir::Node& kn = p_.node(k);
      const std::string& w = kn.inputs[0] == out ? kn.inputs[1] : kn.inputs[0];
      if (w != out && param_fits(w, *xv, m.first)) {
        m.scale = w;
        m.nodes.insert(k);
        m.last = k;
        out = kn.outputs[0];
      }
    }
    if (p_.sole_consumer(out, &k) && plain(k, "Add", 2)) {
      const ir::Node& kn = p_.node(k);
      const std::string& b = kn.inputs[0] == out ? kn.inputs[1] : kn.inputs[0];
      if (b != out && param_fits(b, *xv, m.first)) {
        m.bias = b;
        m.nodes.insert(k);
        m.last = k;
      }
    }
    return true;
  }

 private:
  bool plain(size_t i, const char* op, size_t inputs) const { return p_.plain(i, op, inputs); }

  // Node i is Pow(d, 2) or Mul(d, d).
  bool square_of(size_t i, const std::string& d) const {
    std::string x;
    return p_.square_of(i, &x) && x == d;
  }

  // ReduceMean with keepdims 1 over the last k axes (k >= 1); *first = rank - k. Axes from a constant input
  // (opset 18+) or the attribute; none given means every axis (unless noop_with_empty_axes).
  bool trailing_axes(const ir::Node& mean, int64_t rank, int64_t* first) const {
    std::vector<int64_t> axes;
    if (!p_.kept_reduce_axes(mean, &axes)) return false;
    if (axes.empty()) {
      if (mean.attr_int("noop_with_empty_axes", 0) != 0) return false;
      *first = 0;
      return true;
    }
    for (int64_t& a : axes) {
      if (a < -rank || a >= rank) return false;
      if (a < 0) a += rank;
    }
    std::sort(axes.begin(), axes.end());
    const int64_t k = static_cast<int64_t>(axes.size());
    for (int64_t i = 0; i < k; ++i)
      if (axes[i] != rank - k + i) return false;  // also rejects repeated axes
    *first = rank - k;
    return true;
  }

  // w is a constant of x's dtype that broadcasts over the normalized dims alone: at most x's rank, each dim
  // right-aligned against x's either 1 or (in the normalized dims) equal to x's static dim. Multiplying or
  // adding it keeps x's shape and gives every row the same values, as LayerNormalization's Scale and B do.
  bool param_fits(const std::string& w, const ir::ValueInfo& x, int64_t first) const {
    if (!g_.is_constant(w)) return false;
    const Tensor& t = g_.initializers.at(w);
    const int64_t rank = static_cast<int64_t>(x.shape.rank()), wr = static_cast<int64_t>(t.rank());
    if (t.dtype() != x.dtype || wr > rank) return false;
    for (int64_t i = 0; i < wr; ++i) {
      const int64_t j = rank - wr + i, wd = t.dims()[i];
      if (wd == 1) continue;
      if (j < first || !x.shape[j].is_static() || x.shape[j].value() != wd) return false;
    }
    return true;
  }

  const ir::Graph& g_;
  const PatternGraph& p_;
};

// The parameter w as LayerNormalization takes it: of rank at most k (its extra leading dims are all 1 by
// param_fits, and go in a reshaped copy: the original may have other readers).
std::string as_ln_param(ir::Graph& g, const std::string& w, int64_t k, const std::string& base) {
  const Tensor& t = g.initializers.at(w);
  if (static_cast<int64_t>(t.rank()) <= k) return w;
  std::vector<int64_t> dims(t.dims().end() - k, t.dims().end());
  return add_constant(g, base, t.clone().reshaped(dims));
}

}  // namespace

Status fuse_layer_norm(ir::Graph& g) {
  // Indices stay valid while matching: nodes are replaced in place and erased only at the end.
  PatternGraph pg(g);
  LnMatcher matcher(g, pg);
  std::vector<bool> removed(g.nodes.size(), false);
  for (size_t r = 0; r < g.nodes.size(); ++r) {
    if (removed[r] || g.nodes[r].op_type != "ReduceMean") continue;
    LnMatch m;
    if (!matcher.match(r, m)) continue;
    if (!none_removed(m.nodes, removed) || !pg.only_used_within(m.nodes, m.last)) continue;
    const ir::ValueInfo* xv = g.value(m.x);
    const DType dt = xv->dtype;
    const int64_t rank = static_cast<int64_t>(xv->shape.rank());
    const int64_t k = rank - m.first;
    const std::string base = g.nodes[m.last].name;
    const std::string scale = m.scale.empty() ? add_constant(g, base + "_ln_scale", float_ones(dt, 1))
                                              : as_ln_param(g, m.scale, k, base + "_ln_scale");
    ir::Node n;
    n.name = base;
    n.op_type = "LayerNormalization";
    n.inputs = {m.x, scale};
    if (!m.bias.empty()) n.inputs.push_back(as_ln_param(g, m.bias, k, base + "_ln_bias"));
    n.outputs = {g.nodes[m.last].outputs[0]};
    n.attrs["axis"] = ir::Attribute::of_int(-k);
    n.attrs["epsilon"] = ir::Attribute::of_float(static_cast<float>(m.eps));
    n.attrs["stash_type"] = ir::Attribute::of_int(1);  // statistics in f32, whatever x's dtype
    replace_chain(g, m.nodes, m.last, std::move(n), removed);
  }
  erase_removed(g, removed);
  return Status();
}

}  // namespace kiln::passes
