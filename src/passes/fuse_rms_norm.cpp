// Recognises RMSNorm written out (as exporters write LLaMA/T5-style norms before opset 23) and replaces the
// chain by one RMSNormalization over the last axis, which the GPU runs as one row kernel accumulating in f32:
//   s = ReduceMean(Pow(x, 2) | Mul(x, x), last axis, keepdims=1) + eps
//   y = x * Reciprocal(Sqrt(s))   or   x / Sqrt(s)
//   [y = y * w]                   w a constant of x's last dim ([D] or [1, …, 1, D]), either operand order
// Without the weight multiply the scale is a constant of ones. Only when every intermediate is read inside
// the chain alone (and is no graph output), eps is a one-element constant and x's last dim is static.
#include <cmath>
#include <set>

#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

struct RmsMatch {
  std::string x, scale;  // scale empty: ones
  double eps = 0;
  size_t last = 0;
  std::set<size_t> nodes;
};

class RmsMatcher {
 public:
  RmsMatcher(const ir::Graph& g, const PatternGraph& p) : g_(g), p_(p) {}

  // The chain whose ReduceMean is node r.
  bool match(size_t r, RmsMatch& m) {
    m = RmsMatch();
    const ir::Node& mean = p_.node(r);
    if (mean.op_type != "ReduceMean" || !mean.domain.empty() || mean.inputs.empty() || mean.outputs.size() != 1)
      return false;
    size_t sq;
    if (!p_.producer(mean.inputs[0], &sq) || !p_.square_of(sq, &m.x)) return false;
    const ir::ValueInfo* xv = g_.value(m.x);
    if (!xv || !is_float(xv->dtype) || !xv->shape.has_rank() || xv->shape.rank() == 0) return false;
    const int64_t rank = static_cast<int64_t>(xv->shape.rank());
    if (!xv->shape[rank - 1].is_static() || !last_axis_only(mean, rank)) return false;
    m.nodes.insert({sq, r});
    // + eps
    size_t add;
    std::string other;
    if (!p_.sole_consumer(mean.outputs[0], &add) || !plain(add, "Add", 2)) return false;
    const ir::Node& a = p_.node(add);
    other = a.inputs[0] == mean.outputs[0] ? a.inputs[1] : a.inputs[0];
    if (!p_.scalar_value(other, &m.eps) || !(m.eps >= 0)) return false;
    m.nodes.insert(add);
    // Sqrt, then Reciprocal and Mul(x, ·), or Div(x, ·).
    size_t root;
    if (!p_.sole_consumer(a.outputs[0], &root) || !plain(root, "Sqrt", 1)) return false;
    m.nodes.insert(root);
    size_t next;
    if (!p_.sole_consumer(p_.node(root).outputs[0], &next)) return false;
    std::string normalized;
    if (plain(next, "Div", 2) && p_.node(next).inputs[0] == m.x && p_.node(next).inputs[1] == p_.node(root).outputs[0]) {
      m.nodes.insert(next);
      normalized = p_.node(next).outputs[0];
      m.last = next;
    } else if (plain(next, "Reciprocal", 1)) {
      size_t mul;
      if (!p_.sole_consumer(p_.node(next).outputs[0], &mul) || !plain(mul, "Mul", 2)) return false;
      const ir::Node& mn = p_.node(mul);
      const std::string& r_out = p_.node(next).outputs[0];
      if (!((mn.inputs[0] == m.x && mn.inputs[1] == r_out) || (mn.inputs[1] == m.x && mn.inputs[0] == r_out)))
        return false;
      m.nodes.insert({next, mul});
      normalized = mn.outputs[0];
      m.last = mul;
    } else {
      return false;
    }
    // Optional * w.
    size_t wmul;
    if (p_.sole_consumer(normalized, &wmul) && plain(wmul, "Mul", 2)) {
      const ir::Node& wn = p_.node(wmul);
      const std::string& w = wn.inputs[0] == normalized ? wn.inputs[1] : wn.inputs[0];
      if (w != normalized && scale_fits(w, xv->shape[rank - 1].value(), rank)) {
        m.scale = w;
        m.nodes.insert(wmul);
        m.last = wmul;
      }
    }
    return true;
  }

 private:
  bool plain(size_t i, const char* op, size_t inputs) const { return p_.plain(i, op, inputs); }

  // ReduceMean over the last axis alone, keepdims 1; axes as the attribute (opset < 18) or a constant input.
  bool last_axis_only(const ir::Node& mean, int64_t rank) const {
    std::vector<int64_t> axes;
    return p_.kept_reduce_axes(mean, &axes) && axes.size() == 1 && (axes[0] == -1 || axes[0] == rank - 1);
  }

  // w is a float constant of shape [d] or [1, …, 1, d] with at most x's rank: multiplying keeps x's shape.
  bool scale_fits(const std::string& w, int64_t d, int64_t rank) const {
    if (!g_.is_constant(w)) return false;
    const Tensor& t = g_.initializers.at(w);
    if (!is_float(t.dtype()) || t.rank() == 0 || static_cast<int64_t>(t.rank()) > rank || t.dims().back() != d)
      return false;
    for (size_t i = 0; i + 1 < t.rank(); ++i)
      if (t.dims()[i] != 1) return false;
    return true;
  }

  const ir::Graph& g_;
  const PatternGraph& p_;
};

}  // namespace

Status fuse_rms_norm(ir::Graph& g) {
  // Indices stay valid while matching: nodes are replaced in place and erased only at the end.
  PatternGraph pg(g);
  RmsMatcher matcher(g, pg);
  std::vector<bool> removed(g.nodes.size(), false);
  for (size_t r = 0; r < g.nodes.size(); ++r) {
    if (removed[r] || g.nodes[r].op_type != "ReduceMean") continue;
    RmsMatch m;
    if (!matcher.match(r, m)) continue;
    if (!none_removed(m.nodes, removed) || !pg.only_used_within(m.nodes, m.last)) continue;
    const ir::ValueInfo* xv = g.value(m.x);
    const int64_t d = xv->shape[xv->shape.rank() - 1].value();
    std::string scale = m.scale;
    if (scale.empty()) {
      scale = add_constant(g, g.nodes[m.last].name + "_rms_scale", float_ones(xv->dtype, d));
    } else if (g.initializers.at(scale).rank() != 1 || g.initializers.at(scale).dtype() != xv->dtype) {
      continue;  // RMSNormalization wants scale [d] in X's dtype; a reshaped or mixed-dtype weight stays unfused
    }
    ir::Node n;
    n.name = g.nodes[m.last].name;
    n.op_type = "RMSNormalization";
    n.inputs = {m.x, scale};
    n.outputs = {g.nodes[m.last].outputs[0]};
    n.attrs["axis"] = ir::Attribute::of_int(-1);
    n.attrs["epsilon"] = ir::Attribute::of_float(static_cast<float>(m.eps));
    n.attrs["stash_type"] = ir::Attribute::of_int(1);  // accumulate in f32
    replace_chain(g, m.nodes, m.last, std::move(n), removed);
  }
  erase_removed(g, removed);
  return Status();
}

}  // namespace kiln::passes
