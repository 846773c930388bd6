// fuse_attention: scaled dot-product attention chains become one kiln FusedAttention node (src/ops/
// fused_attention.cpp), so the CUDA backend runs them as a flash kernel that never writes the [Sq, Sk]
// scores.
//
// Recognised, as torch 2.11's exporter writes F.scaled_dot_product_attention and nn.MultiheadAttention (see
// tests/data/skeletons/{bert_base,gpt2,vit_b_16}.ops.txt) and in the usual hand-written forms:
//   MatMul(Q', K^T') [Mul/Div by constants] [Add mask | Where(bool, scores, -inf)] Softmax(last axis)
//   [IsNaN -> Where(isnan, 0, P)] MatMul(P, V)
// where Q' is Q times/divided by scalar constants, and K^T' is K^T, scaled the same way, built by
//   Transpose (any perm whose swap of the last two axes gives K's layout: a new Transpose makes K unless that
//   is the identity), Reshape([.., S, D]) -> Transpose[0,2,1] -> Reshape([B, H, D, S]) (torch's K^T for
//   4-D inputs; the shape operands are checked symbolically: they must read K's own dims through Shape/Slice/
//   Concat/Gather chains or be equal constants), or anything else (then a new Transpose makes K from it).
// An additive mask made by Where(bool, 0, -inf) is replaced by its bool (the Where is left for dead-code
// elimination: torch shares it across layers); a constant lower-triangular mask becomes causal=1.
// Everything between the first MatMul and the last must have no other consumer (nor be a graph output),
// otherwise the chain stays as it is; so do chains whose fused node fails shape inference.
// The ONNX opset-23 Attention op is lowered to FusedAttention by lower_onnx_attention, which runs first.
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "ops/op.h"
#include "passes/pass.h"

namespace kiln::passes {

namespace {

// One element of a 1-D shape tensor: a constant, or dim `axis` of tensor `t`.
struct DimExpr {
  int64_t c = 0;
  std::string t;
  int64_t axis = -1;
  bool is_ref() const { return axis >= 0; }
};

class Matcher {
 public:
  explicit Matcher(ir::Graph& g) : g_(g) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (const auto& o : g.nodes[i].outputs)
        if (!o.empty()) producer_[o] = i;
    consumers_ = g.consumers();
    for (const auto& [name, idx] : consumers_) uses_[name] += static_cast<int>(idx.size());
    for (const auto& o : g.outputs) ++uses_[o];
    count_subgraph_reads(g, false);
  }

  // Tries to fuse the chain ending at Softmax node `si`; on success records the edit and returns true.
  bool try_fuse(size_t si);
  // Applies the recorded edits.
  void apply();
  int fused() const { return fused_; }

 private:
  void count_subgraph_reads(const ir::Graph& g, bool inside) {
    for (const auto& n : g.nodes) {
      if (inside)
        for (const auto& in : n.inputs) ++uses_[in];
      for (const auto& [k, a] : n.attrs)
        if (a.g) {
          count_subgraph_reads(*a.g, true);
          for (const auto& o : a.g->outputs) ++uses_[o];
        }
    }
  }

  const ir::Node* producer(const std::string& v) const {
    auto it = producer_.find(v);
    if (it == producer_.end()) return nullptr;
    const ir::Node& n = g_.nodes[it->second];
    return n.domain.empty() && !removed_.count(it->second) ? &n : nullptr;
  }
  size_t index_of(const ir::Node* n) const { return static_cast<size_t>(n - g_.nodes.data()); }
  bool single_use(const std::string& v) const {
    auto it = uses_.find(v);
    return it != uses_.end() && it->second == 1;
  }
  const Shape* shape(const std::string& v) const {
    const ir::ValueInfo* vi = g_.value(v);
    return vi && vi->shape.has_rank() ? &vi->shape : nullptr;
  }
  int64_t rank(const std::string& v) const {
    const Shape* s = shape(v);
    return s ? static_cast<int64_t>(s->rank()) : -1;
  }
  DType dtype(const std::string& v) const {
    const ir::ValueInfo* vi = g_.value(v);
    if (vi && vi->dtype != DType::kUndefined) return vi->dtype;
    auto it = g_.initializers.find(v);
    return it != g_.initializers.end() ? it->second.dtype() : DType::kUndefined;
  }
  // A one-element float constant of rank <= 4 (so a Mul/Div by it keeps a 4-D operand's shape).
  std::optional<double> scalar_const(const std::string& v) const {
    auto it = g_.initializers.find(v);
    if (it == g_.initializers.end()) return std::nullopt;
    const Tensor& t = it->second;
    if (!is_float(t.dtype()) || t.numel() != 1 || t.rank() > 4) return std::nullopt;
    return t.get_as_double(0);
  }
  std::optional<std::vector<int64_t>> const_ints(const std::string& v) const {
    auto it = g_.initializers.find(v);
    if (it == g_.initializers.end() || it->second.rank() > 1) return std::nullopt;
    const Tensor& t = it->second;
    if (t.dtype() != DType::kI64 && t.dtype() != DType::kI32) return std::nullopt;
    std::vector<int64_t> out;
    for (int64_t i = 0; i < t.numel(); ++i) out.push_back(t.get_as_int(i));
    return out;
  }

  // x = y * c, y * c with c first, or y / c: returns y and multiplies `scale` by c (or 1/c).
  std::optional<std::string> strip_scale(const std::string& x, double& scale,
                                         std::vector<size_t>& chain) const;
  std::optional<std::vector<DimExpr>> shape_expr(const std::string& v, int depth) const;
  bool dim_is(const DimExpr& e, const std::string& t, int64_t axis) const;
  // torch's K^T: Reshape(K -> [.., S, D]) -> Transpose[0,2,1] -> Reshape(-> [B, H, D, S]); returns K.
  std::optional<std::string> match_reshape_kt(const ir::Node& r2, std::vector<size_t>& chain) const;
  bool is_causal_mask(const std::string& mask) const;

  ir::Graph& g_;
  std::map<std::string, size_t> producer_;
  std::map<std::string, std::vector<size_t>> consumers_;
  std::map<std::string, int> uses_;
  std::set<size_t> removed_;
  std::map<size_t, std::vector<ir::Node>> replacement_;  // node index -> nodes taking its place
  std::set<std::string> new_names_;
  int fused_ = 0;

  std::string fresh(const std::string& base) {
    std::string n = g_.unique_name(base);
    for (int i = 1; new_names_.count(n); ++i) n = g_.unique_name(base + "_" + std::to_string(i));
    new_names_.insert(n);
    return n;
  }
};

std::optional<std::string> Matcher::strip_scale(const std::string& x, double& scale,
                                                std::vector<size_t>& chain) const {
  const ir::Node* p = producer(x);
  if (!p || p->inputs.size() != 2) return std::nullopt;
  if (p->op_type == "Mul") {
    for (int side : {1, 0}) {
      auto c = scalar_const(p->inputs[side]);
      if (c && !g_.is_constant(p->inputs[1 - side])) {
        scale *= *c;
        chain.push_back(index_of(p));
        return p->inputs[1 - side];
      }
    }
  } else if (p->op_type == "Div") {
    auto c = scalar_const(p->inputs[1]);
    if (c && *c != 0) {
      scale /= *c;
      chain.push_back(index_of(p));
      return p->inputs[0];
    }
  }
  return std::nullopt;
}

std::optional<std::vector<DimExpr>> Matcher::shape_expr(const std::string& v, int depth) const {
  if (depth > 24) return std::nullopt;
  if (auto c = const_ints(v)) {
    std::vector<DimExpr> out;
    for (int64_t x : *c) out.push_back({x, "", -1});
    return out;
  }
  const ir::Node* p = producer(v);
  if (!p || p->inputs.empty()) return std::nullopt;
  const std::string& op = p->op_type;
  if (op == "Shape") {
    const int64_t r = rank(p->inputs[0]);
    if (r < 0) return std::nullopt;
    auto norm = [&](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + r : i, 0, r); };
    const int64_t start = norm(p->attr_int("start", 0)), end = norm(p->attr_int("end", r));
    std::vector<DimExpr> out;
    for (int64_t i = start; i < end; ++i) out.push_back({0, p->inputs[0], i});
    return out;
  }
  if (op == "Concat") {
    std::vector<DimExpr> out;
    for (const auto& in : p->inputs) {
      auto e = shape_expr(in, depth + 1);
      if (!e) return std::nullopt;
      out.insert(out.end(), e->begin(), e->end());
    }
    return out;
  }
  if (op == "Identity" || op == "Squeeze" || op == "Unsqueeze" || op == "Reshape" ||
      (op == "Cast" && (p->attr_int("to", 0) == 7 || p->attr_int("to", 0) == 6))) {
    // The flat sequence of a shape tensor is what matters; these keep it.
    return shape_expr(p->inputs[0], depth + 1);
  }
  if (op == "Gather") {
    if (p->attr_int("axis", 0) != 0 || p->inputs.size() != 2) return std::nullopt;
    auto data = shape_expr(p->inputs[0], depth + 1);
    auto idx = const_ints(p->inputs[1]);
    if (!data || !idx) return std::nullopt;
    const int64_t n = static_cast<int64_t>(data->size());
    std::vector<DimExpr> out;
    for (int64_t i : *idx) {
      if (i < 0) i += n;
      if (i < 0 || i >= n) return std::nullopt;
      out.push_back((*data)[i]);
    }
    return out;
  }
  if (op == "Slice" && p->inputs.size() >= 3) {
    auto data = shape_expr(p->inputs[0], depth + 1);
    auto starts = const_ints(p->inputs[1]), ends = const_ints(p->inputs[2]);
    if (!data || !starts || !ends || starts->size() != 1 || ends->size() != 1) return std::nullopt;
    if (p->inputs.size() > 3 && !p->inputs[3].empty()) {
      auto axes = const_ints(p->inputs[3]);
      if (!axes || axes->size() != 1 || ((*axes)[0] != 0 && (*axes)[0] != -1)) return std::nullopt;
    }
    int64_t step = 1;
    if (p->inputs.size() > 4 && !p->inputs[4].empty()) {
      auto steps = const_ints(p->inputs[4]);
      if (!steps || steps->size() != 1 || (*steps)[0] != 1) return std::nullopt;
      step = (*steps)[0];
    }
    const int64_t n = static_cast<int64_t>(data->size());
    auto clampi = [&](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
    std::vector<DimExpr> out;
    for (int64_t i = clampi((*starts)[0]); i < clampi((*ends)[0]); i += step) out.push_back((*data)[i]);
    return out;
  }
  return std::nullopt;
}

bool Matcher::dim_is(const DimExpr& e, const std::string& t, int64_t axis) const {
  if (e.is_ref() && e.t == t && e.axis == axis) return true;
  const Shape* st = shape(t);
  if (!st || axis >= static_cast<int64_t>(st->rank())) return false;
  const Dim& want = (*st)[axis];
  if (!e.is_ref()) return e.c > 0 && want.is_static() && want.value() == e.c;
  const Shape* se = shape(e.t);
  if (!se || e.axis >= static_cast<int64_t>(se->rank())) return false;
  return (*se)[e.axis].same_as(want);
}

std::optional<std::string> Matcher::match_reshape_kt(const ir::Node& r2, std::vector<size_t>& chain) const {
  if (r2.op_type != "Reshape" || r2.inputs.size() != 2 || !single_use(r2.inputs[0])) return std::nullopt;
  const ir::Node* tr = producer(r2.inputs[0]);
  if (!tr || tr->op_type != "Transpose" || !single_use(tr->inputs[0])) return std::nullopt;
  const ir::Node* r1 = producer(tr->inputs[0]);
  if (!r1 || r1->op_type != "Reshape" || r1->inputs.size() != 2) return std::nullopt;
  const std::string& k = r1->inputs[0];
  if (rank(k) != 4) return std::nullopt;
  auto t1 = shape_expr(r1->inputs[1], 0), t2 = shape_expr(r2.inputs[1], 0);
  if (!t1 || !t2 || t1->size() < 2 || t2->size() != 4) return std::nullopt;
  const size_t n1 = t1->size();
  // The middle tensor is [.., S, D] with the last two axes swapped by the Transpose.
  if (!dim_is((*t1)[n1 - 2], k, 2) || !dim_is((*t1)[n1 - 1], k, 3)) return std::nullopt;
  for (size_t i = 0; i + 2 < n1; ++i)
    if (!(*t1)[i].is_ref() && (*t1)[i].c == 0 && r1->attr_int("allowzero", 0) != 0) return std::nullopt;
  std::vector<int64_t> perm = tr->attr_ints("perm");
  std::vector<int64_t> want(n1);
  for (size_t i = 0; i < n1; ++i) want[i] = static_cast<int64_t>(i);
  std::swap(want[n1 - 2], want[n1 - 1]);
  if (perm != want) return std::nullopt;
  // The result is [B, H, D, S]: K's leading dims (one of them may be -1), then D and S.
  if (!dim_is((*t2)[2], k, 3) || !dim_is((*t2)[3], k, 2)) return std::nullopt;
  int inferred = 0;
  for (int64_t i = 0; i < 2; ++i) {
    if (!(*t2)[i].is_ref() && (*t2)[i].c == -1)
      ++inferred;
    else if (!dim_is((*t2)[i], k, i))
      return std::nullopt;
  }
  if (inferred > 1) return std::nullopt;
  chain.push_back(index_of(&r2));
  chain.push_back(index_of(tr));
  chain.push_back(index_of(r1));
  return k;
}

bool Matcher::is_causal_mask(const std::string& mask) const {
  auto it = g_.initializers.find(mask);
  if (it == g_.initializers.end()) return false;
  const Tensor& t = it->second;
  const size_t r = t.rank();
  if (r < 2 || r > 4) return false;
  for (size_t i = 0; i + 2 < r; ++i)
    if (t.dim(i) != 1) return false;
  const int64_t sq = t.dim(r - 2), sk = t.dim(r - 1);
  if (sq < 2 || sk < 2) return false;  // a broadcast row or column is not the triangle
  for (int64_t i = 0; i < sq; ++i)
    for (int64_t j = 0; j < sk; ++j) {
      const double v = t.get_as_double(i * sk + j);
      const bool keep = j <= i;
      if (t.dtype() == DType::kBool) {
        if ((v != 0) != keep) return false;
      } else if (keep ? v != 0 : !(std::isinf(v) && v < 0)) {
        return false;
      }
    }
  return true;
}

bool Matcher::try_fuse(size_t si) {
  const ir::Node& sm = g_.nodes[si];
  if (sm.op_type != "Softmax" || !sm.domain.empty() || removed_.count(si)) return false;
  const std::string& x = sm.inputs[0];
  const int64_t r = rank(x);
  if (r != 4 || !single_use(x)) return false;
  int64_t axis = sm.attr_int("axis", g_.opset < 13 ? 1 : -1);
  if (axis < 0) axis += r;
  if (axis != r - 1) return false;
  const DType dt = dtype(x);
  if (dt != DType::kF32 && dt != DType::kF16 && dt != DType::kBF16 && dt != DType::kF64) return false;

  std::vector<size_t> chain = {si};
  double scale = 1.0;
  // Walks from the (masked) scores back to the Q.K^T MatMul through scalar scaling.
  auto to_matmul = [&](std::string s, std::vector<size_t>& nodes, double& sc) -> const ir::Node* {
    for (;;) {
      if (!single_use(s)) return nullptr;
      const ir::Node* p = producer(s);
      if (!p) return nullptr;
      if (p->op_type == "MatMul") {
        nodes.push_back(index_of(p));
        return p;
      }
      auto next = strip_scale(s, sc, nodes);
      if (!next) return nullptr;
      s = *next;
    }
  };

  std::string mask;
  bool mask_negated = false;
  const ir::Node* mm1 = nullptr;
  const ir::Node* xp = producer(x);
  if (!xp) return false;
  if (xp->op_type == "Add" && xp->inputs.size() == 2) {
    for (int side : {0, 1}) {
      std::vector<size_t> nodes;
      double sc = 1.0;
      if (const ir::Node* m = to_matmul(xp->inputs[side], nodes, sc)) {
        mm1 = m;
        mask = xp->inputs[1 - side];
        scale = sc;
        chain.push_back(index_of(xp));
        chain.insert(chain.end(), nodes.begin(), nodes.end());
        break;
      }
    }
    // Where(bool, 0, -inf) as an additive mask is the bool itself.
    if (mm1) {
      const ir::Node* w = producer(mask);
      if (w && w->op_type == "Where" && w->inputs.size() == 3 && dtype(w->inputs[0]) == DType::kBool) {
        auto zero = scalar_const(w->inputs[1]), ninf = scalar_const(w->inputs[2]);
        if (zero && ninf && *zero == 0 && std::isinf(*ninf) && *ninf < 0) mask = w->inputs[0];
      }
    }
  } else if (xp->op_type == "Where" && xp->inputs.size() == 3 && dtype(xp->inputs[0]) == DType::kBool) {
    for (int side : {1, 2}) {
      auto c = scalar_const(xp->inputs[side == 1 ? 2 : 1]);
      if (!c || !std::isinf(*c) || *c > 0) continue;
      std::vector<size_t> nodes;
      double sc = 1.0;
      if (const ir::Node* m = to_matmul(xp->inputs[side], nodes, sc)) {
        mm1 = m;
        mask = xp->inputs[0];
        mask_negated = side == 2;  // Where(c, -inf, scores) keeps the scores where c is false
        scale = sc;
        chain.push_back(index_of(xp));
        chain.insert(chain.end(), nodes.begin(), nodes.end());
        break;
      }
    }
  } else {
    std::vector<size_t> nodes;
    double sc = 1.0;
    mm1 = to_matmul(x, nodes, sc);
    if (mm1) {
      scale = sc;
      chain.insert(chain.end(), nodes.begin(), nodes.end());
    }
  }
  if (!mm1 || mm1->inputs.size() != 2) return false;
  if (!mask.empty() && (rank(mask) < 0 || rank(mask) > 4)) return false;

  // Q side: scalar scaling only.
  std::string q = mm1->inputs[0];
  while (single_use(q)) {
    auto next = strip_scale(q, scale, chain);
    if (!next) break;
    q = *next;
  }
  // K side: scaling, and the transpose that makes K^T.
  std::string kt = mm1->inputs[1];
  std::optional<std::vector<int64_t>> k_perm;  // K = transpose(k_src, k_perm); identity: K = k_src
  std::string k_src;
  bool removable = true;  // false once the walk passes a node that stays (its input must stay too)
  for (;;) {
    if (removable && single_use(kt)) {
      if (auto next = strip_scale(kt, scale, chain)) {
        kt = *next;
        continue;
      }
    }
    if (k_perm) break;
    const ir::Node* p = producer(kt);
    if (p && p->op_type == "Transpose" && rank(p->inputs[0]) == 4) {
      std::vector<int64_t> perm = p->attr_ints("perm");
      if (perm.empty()) perm = {3, 2, 1, 0};
      if (perm.size() != 4) break;
      std::swap(perm[2], perm[3]);
      k_perm = perm;
      // A K^T that others also read stays; K is then a second Transpose of its input.
      removable = removable && single_use(kt);
      if (removable) chain.push_back(index_of(p));
      kt = p->inputs[0];
      continue;
    }
    if (p && removable && single_use(kt)) {
      if (auto k = match_reshape_kt(*p, chain)) {
        k_perm = std::vector<int64_t>{0, 1, 2, 3};
        kt = *k;
        continue;
      }
    }
    break;
  }
  if (!k_perm) {
    if (rank(kt) != 4) return false;
    k_perm = std::vector<int64_t>{0, 1, 3, 2};
  }
  k_src = kt;

  // After the softmax: an optional IsNaN/Where guard, then P @ V.
  const std::string& p_out = sm.outputs[0];
  auto consumers_of = [&](const std::string& v) {
    auto it = consumers_.find(v);
    return it == consumers_.end() ? std::vector<size_t>{} : it->second;
  };
  bool nan_to_zero = false;
  std::string probs = p_out;
  auto it_uses = uses_.find(p_out);
  const int p_uses = it_uses == uses_.end() ? 0 : it_uses->second;
  if (p_uses == 2) {
    auto cs = consumers_of(p_out);
    if (cs.size() != 2) return false;
    const ir::Node* isnan = nullptr;
    const ir::Node* guard = nullptr;
    for (size_t c : cs) {
      const ir::Node& n = g_.nodes[c];
      if (n.op_type == "IsNaN" && n.domain.empty()) isnan = &n;
      if (n.op_type == "Where" && n.domain.empty()) guard = &n;
    }
    if (!isnan || !guard || guard->inputs.size() != 3 || !single_use(isnan->outputs[0])) return false;
    auto zero = scalar_const(guard->inputs[1]);
    if (guard->inputs[0] != isnan->outputs[0] || !zero || *zero != 0 || guard->inputs[2] != p_out)
      return false;
    chain.push_back(index_of(isnan));
    chain.push_back(index_of(guard));
    probs = guard->outputs[0];
    nan_to_zero = true;
  }
  if (!single_use(probs)) return false;
  auto pc = consumers_of(probs);
  if (pc.size() != 1) return false;
  const ir::Node& mm2 = g_.nodes[pc[0]];
  if (mm2.op_type != "MatMul" || !mm2.domain.empty() || mm2.inputs.size() != 2 || mm2.inputs[0] != probs)
    return false;
  const std::string& v = mm2.inputs[1];
  if (rank(q) != 4 || rank(v) != 4 || rank(mm2.outputs[0]) != 4) return false;
  if (dtype(q) != dt || dtype(k_src) != dt || dtype(v) != dt) return false;
  for (size_t c : chain)
    if (removed_.count(c)) return false;

  // The new nodes: optional Transpose (K) and Not (negated bool mask), then FusedAttention.
  std::vector<ir::Node> added;
  std::string k = k_src;
  const bool identity = *k_perm == std::vector<int64_t>{0, 1, 2, 3};
  std::map<std::string, ir::ValueInfo> infos;  // for the inference check below
  if (!identity) {
    ir::Node t;
    t.op_type = "Transpose";
    t.name = mm2.name + "/k_transpose";
    k = fresh(mm2.name + "_k");
    t.inputs = {k_src};
    t.outputs = {k};
    t.attrs["perm"] = ir::Attribute::of_ints(*k_perm);
    const Shape& s = *shape(k_src);
    std::vector<Dim> d(4);
    for (int i = 0; i < 4; ++i) d[i] = s[(*k_perm)[i]];
    infos[k] = {dt, Shape(d)};
    added.push_back(std::move(t));
  }
  bool causal = false;
  if (!mask.empty() && !mask_negated && is_causal_mask(mask)) {
    causal = true;
    mask.clear();
  }
  if (mask_negated) {
    ir::Node n;
    n.op_type = "Not";
    n.name = mm2.name + "/mask_not";
    const std::string m = fresh(mm2.name + "_mask");
    n.inputs = {mask};
    n.outputs = {m};
    infos[m] = {DType::kBool, *shape(mask)};
    mask = m;
    added.push_back(std::move(n));
  }
  ir::Node fa;
  fa.op_type = "FusedAttention";
  fa.domain = std::string(ops::kKilnDomain);
  fa.name = mm2.name;
  fa.inputs = {q, k, v};
  if (!mask.empty()) fa.inputs.push_back(mask);
  fa.outputs = {mm2.outputs[0]};
  fa.attrs["scale"] = ir::Attribute::of_float(static_cast<float>(scale));
  fa.attrs["causal"] = ir::Attribute::of_int(causal ? 1 : 0);
  fa.attrs["nan_to_zero"] = ir::Attribute::of_int(nan_to_zero ? 1 : 0);

  // Shapes that provably do not fit FusedAttention's broadcasting leave the chain alone.
  std::vector<const ir::ValueInfo*> in_infos;
  for (const auto& in : fa.inputs) {
    auto it = infos.find(in);
    in_infos.push_back(it != infos.end() ? &it->second : g_.value(in));
    if (!in_infos.back()) return false;
  }
  ops::InferContext ictx(fa, g_.opset, in_infos, std::vector<const Tensor*>(fa.inputs.size(), nullptr));
  if (!ops::infer_node(fa, g_.opset, ictx).ok()) return false;

  added.push_back(std::move(fa));
  for (auto& [name, info] : infos) g_.values[name] = info;
  chain.push_back(pc[0]);
  for (size_t c : chain) removed_.insert(c);
  replacement_[pc[0]] = std::move(added);
  ++fused_;
  return true;
}

void Matcher::apply() {
  std::vector<ir::Node> out;
  out.reserve(g_.nodes.size());
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    auto it = replacement_.find(i);
    if (it != replacement_.end())
      for (auto& n : it->second) out.push_back(std::move(n));
    if (!removed_.count(i)) out.push_back(std::move(g_.nodes[i]));
  }
  g_.nodes = std::move(out);
}

}  // namespace

Status fuse_attention(ir::Graph& g) {
  Matcher m(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) m.try_fuse(i);
  if (m.fused() > 0) m.apply();
  return Status();
}

}  // namespace kiln::passes
