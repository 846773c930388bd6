// Folds per-output-channel affine ops that follow a Conv into the Conv's constant weights and bias:
//   Conv -> BatchNormalization (inference, constant stats):  W' = W * s,  B' = (B - mean) * s + beta,
//                                                              s = gamma / sqrt(var + epsilon)
//   Conv -> Mul / Div by a per-channel constant:               W' = W * c,  B' = B * c  (c -> 1/c for Div)
//   Conv -> Add / Sub of a per-channel constant:               B' = B + c   (c -> -c for Sub)
// torch's exporter already folds BatchNorm; other exporters (and torch in training-mode export, or
// hand-written models) keep BN or its Mul/Add decomposition. Chains fold one op at a time (Conv -> Mul -> Add
// becomes one Conv). Arithmetic is in double, rounded once to the weights' dtype; the new weights get new
// names (the old ones may be shared) and eliminate_dead_code drops the unused originals.
#include <cmath>
#include <set>

#include "backends/cpu/dispatch.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

bool is_folded_float(DType t) {
  return t == DType::kF32 || t == DType::kF64 || t == DType::kF16 || t == DType::kBF16;
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_as_double(i);
  return v;
}

Tensor from_doubles(DType dt, const std::vector<int64_t>& dims, const std::vector<double>& v) {
  Tensor f64 = Tensor::from_vector(DType::kF64, dims, v);
  return dt == DType::kF64 ? f64 : cpu::convert_tensor(f64, dt);
}

// Values read anywhere other than by one node input: graph outputs and names subgraph bodies read.
// The per-output-channel values of a constant broadcast against a rank-r conv output with m channels; empty
// when it is not per-channel (it would broadcast along batch or spatial axes, or grow the output).
std::vector<double> per_channel(const Tensor& c, size_t r, int64_t m) {
  if (c.rank() > r) return {};
  const size_t off = r - c.rank();
  int64_t channel_len = 1;
  for (size_t i = 0; i < c.rank(); ++i) {
    const size_t axis = off + i;
    if (c.dim(i) == 1) continue;
    if (axis != 1 || c.dim(i) != m) return {};
    channel_len = m;
  }
  // With only the channel axis non-1, the flat index of channel k is k (every other dim is 1).
  std::vector<double> v(static_cast<size_t>(m));
  for (int64_t k = 0; k < m; ++k) v[k] = c.get_as_double(channel_len == 1 ? 0 : k);
  return v;
}

struct ConvState {
  std::vector<double> w, b;  // b empty until a fold needs it (Conv without bias)
  std::vector<int64_t> w_dims;
  DType dtype = DType::kUndefined;
  int64_t m = 0, per_m = 0;  // output channels, weight elements per output channel
  void ensure_bias() {
    if (b.empty()) b.assign(static_cast<size_t>(m), 0.0);
  }
  void scale(const std::vector<double>& s) {
    for (int64_t k = 0; k < m; ++k)
      for (int64_t j = 0; j < per_m; ++j) w[k * per_m + j] *= s[k];
    if (!b.empty())
      for (int64_t k = 0; k < m; ++k) b[k] *= s[k];
  }
  void shift(const std::vector<double>& t) {
    ensure_bias();
    for (int64_t k = 0; k < m; ++k) b[k] += t[k];
  }
};

// Tries to fold `n` (the only consumer of the conv's output `y`) into st; false leaves st untouched.
bool fold_one(const ir::Graph& g, const ir::Node& n, const std::string& y, size_t rank, ConvState& st) {
  auto constant = [&](size_t i) -> const Tensor* {
    if (i >= n.inputs.size() || n.inputs[i].empty()) return nullptr;
    auto it = g.initializers.find(n.inputs[i]);
    return it == g.initializers.end() ? nullptr : &it->second;
  };
  if (n.op_type == "BatchNormalization") {
    if (n.inputs.size() != 5 || n.inputs[0] != y) return false;
    for (size_t i = 1; i < n.outputs.size(); ++i)
      if (!n.outputs[i].empty()) return false;  // running stats requested: training mode
    if (n.attr_int("training_mode", 0) != 0 || n.attr_int("spatial", 1) != 1) return false;
    const Tensor *gamma = constant(1), *beta = constant(2), *mean = constant(3), *var = constant(4);
    if (!gamma || !beta || !mean || !var) return false;
    for (const Tensor* t : {gamma, beta, mean, var})
      if (t->rank() != 1 || t->dim(0) != st.m || !is_folded_float(t->dtype())) return false;
    const double eps = n.attr_float("epsilon", 1e-5f);
    std::vector<double> s(st.m), t(st.m);
    for (int64_t k = 0; k < st.m; ++k) {
      s[k] = gamma->get_as_double(k) / std::sqrt(var->get_as_double(k) + eps);
      t[k] = beta->get_as_double(k) - mean->get_as_double(k) * s[k];
    }
    st.scale(s);
    st.shift(t);
    return true;
  }
  const bool mul = n.op_type == "Mul", div = n.op_type == "Div", add = n.op_type == "Add",
             sub = n.op_type == "Sub";
  if (!(mul || div || add || sub) || n.inputs.size() != 2) return false;
  // Commutative ops take the constant on either side; Sub and Div only as y - c, y / c.
  size_t ci;
  if (n.inputs[0] == y && n.inputs[1] != y)
    ci = 1;
  else if ((mul || add) && n.inputs[1] == y && n.inputs[0] != y)
    ci = 0;
  else
    return false;
  const Tensor* c = constant(ci);
  if (!c || c->dtype() != st.dtype) return false;
  std::vector<double> v = per_channel(*c, rank, st.m);
  if (v.empty()) return false;
  if (div) {
    for (double x : v)
      if (x == 0.0 || !std::isfinite(x)) return false;  // keep the Div: inf/NaN semantics are the model's
    for (double& x : v) x = 1.0 / x;
  }
  if (sub)
    for (double& x : v) x = -x;
  if (mul || div)
    st.scale(v);
  else
    st.shift(v);
  return true;
}

}  // namespace

Status fold_batch_norm(ir::Graph& g) {
  std::set<std::string> pinned(g.outputs.begin(), g.outputs.end());
  pinned.merge(subgraph_read_names(g));
  std::map<std::string, std::vector<size_t>> uses = g.consumers();
  std::vector<bool> removed(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& conv = g.nodes[i];
    if (removed[i] || conv.op_type != "Conv" || !conv.domain.empty() || conv.inputs.size() < 2 ||
        conv.outputs.size() != 1)
      continue;
    auto wit = g.initializers.find(conv.inputs[1]);
    const bool has_b = conv.inputs.size() > 2 && !conv.inputs[2].empty();
    auto bit = has_b ? g.initializers.find(conv.inputs[2]) : g.initializers.end();
    if (wit == g.initializers.end() || (has_b && bit == g.initializers.end())) continue;
    const Tensor& w = wit->second;
    if (!is_folded_float(w.dtype()) || w.rank() < 3 || w.dim(0) <= 0) continue;
    if (has_b && (bit->second.dtype() != w.dtype() || bit->second.numel() != w.dim(0))) continue;

    ConvState st;
    bool loaded = false;
    int folded = 0;
    // Follow the output through foldable single consumers.
    for (;;) {
      const std::string& y = conv.outputs[0];
      if (pinned.count(y)) break;
      auto u = uses.find(y);
      if (u == uses.end() || u->second.size() != 1) break;  // also covers one node reading y twice
      const size_t ci = u->second[0];
      if (removed[ci]) break;
      if (!loaded) {
        st.dtype = w.dtype();
        st.w = to_doubles(w);
        st.w_dims = w.dims();
        st.m = w.dim(0);
        st.per_m = w.numel() / st.m;
        if (has_b) st.b = to_doubles(bit->second);
        loaded = true;
      }
      if (!fold_one(g, g.nodes[ci], y, w.rank(), st)) break;
      conv.outputs[0] = g.nodes[ci].outputs[0];
      removed[ci] = true;
      ++folded;
    }
    if (!folded) continue;
    const std::string wname = g.unique_name(conv.name + "_w_folded");
    g.initializers[wname] = from_doubles(st.dtype, st.w_dims, st.w);
    g.values[wname] = {st.dtype, Shape::from_dims(st.w_dims)};
    conv.inputs[1] = wname;
    if (st.b.empty()) continue;  // only scaled, and there was no bias: still none
    const std::string bname = g.unique_name(conv.name + "_b_folded");
    g.initializers[bname] = from_doubles(st.dtype, {st.m}, st.b);
    g.values[bname] = {st.dtype, Shape::from_dims({st.m})};
    conv.inputs.resize(3);
    conv.inputs[2] = bname;
  }
  std::vector<ir::Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!removed[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return Status();
}

}  // namespace kiln::passes
