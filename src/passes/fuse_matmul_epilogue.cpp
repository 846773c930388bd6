// MatMul/Gemm with a constant 2-D weight, followed by Add(constant bias [N]), Add(residual of the same shape)
// and Relu/Gelu, becomes one FusedMatMul: Y = act(alpha·A·B + bias + residual), a single cuBLASLt call on the
// GPU. Each absorbed node must be the only reader of the value before it (and that value no graph output).
//
// A B that is Transpose(perm [1, 0]) of a constant 2-D weight W is read as W with B transposed (trans_b), so
// the Transpose no longer runs and W is not copied: GPT-2's tied lm_head, MatMul(x, Transpose(wte)), where
// wte also feeds the embedding Gather. That alone is worth a FusedMatMul, with nothing else fused.
//
// A Reshape right after a 2-D Gemm that keeps the last dim (torch's Linear on a flattened [B*S, K] input,
// GPT-2's addmm) is looked through: the fused node computes the 2-D [M, N] result and the Reshape moves after
// it; a residual of the Reshape's output shape is reshaped to [M, N] first (a view on the GPU).
#include <optional>
#include <string>
#include <vector>

#include "ops/fused_matmul.h"
#include "ops/op.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

bool gemm_dtype(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

// Two shapes provably equal dim by dim (static and equal, or the same symbol).
bool same_shape(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i)
    if (!a[i].same_as(b[i])) return false;
  return true;
}

// What one MatMul/Gemm and the nodes after it fuse into.
struct Plan {
  size_t origin = 0;
  std::string a, b, out;  // out: the value the fused chain finally writes
  std::string bias;       // an initializer of N elements ([N] or [1, …, 1, N])
  std::string residual;
  ops::MatMulActivation act = ops::MatMulActivation::kNone;
  bool trans_b = false;
  float alpha = 1.f;
  int64_t n = 0;
  std::optional<size_t> reshape;    // a Reshape looked through (see the file comment)
  bool weight_transposed = false;   // b is the weight under a Transpose(perm [1, 0]), read directly
  std::optional<size_t> transpose;  // that Transpose, when this node was its only reader (it goes too)
  std::vector<size_t> absorbed;     // nodes replaced, in order; the last one's slot gets the fused node
};

class EpilogueMatcher {
 public:
  EpilogueMatcher(const ir::Graph& g, const PatternGraph& p) : g_(g), p_(p) {}

  // MatMul/Gemm at index i with what follows it, or nothing when it is not fusable.
  bool match(size_t i, Plan& plan) {
    const ir::Node& n = p_.node(i);
    if (!n.domain.empty() || (n.op_type != "MatMul" && n.op_type != "Gemm")) return false;
    if (n.inputs.size() < 2 || n.outputs.size() != 1) return false;
    plan = Plan();
    plan.origin = i;
    plan.a = n.inputs[0];
    plan.b = n.inputs[1];
    plan.out = n.outputs[0];
    plan.absorbed = {i};
    const ir::ValueInfo* a = g_.value(plan.a);
    if (!a || !a->shape.has_rank() || a->shape.rank() < 2 || !gemm_dtype(a->dtype)) return false;
    if (n.op_type == "Gemm") {
      if (n.attr_int("transA", 0) != 0 || a->shape.rank() != 2) return false;
      plan.trans_b = n.attr_int("transB", 0) != 0;
      plan.alpha = n.attr_float("alpha", 1.f);
    }
    if (std::string w; !g_.initializers.count(plan.b) && transposed_weight(plan.b, &w)) {
      size_t t;
      if (p_.sole_consumer(plan.b, &t) && plan.a != plan.b) plan.transpose = t;
      plan.b = w;
      plan.trans_b = !plan.trans_b;
      plan.weight_transposed = true;
    }
    auto w = g_.initializers.find(plan.b);
    if (w == g_.initializers.end() || w->second.rank() != 2 || w->second.dtype() != a->dtype) return false;
    plan.n = w->second.dim(plan.trans_b ? 0 : 1);
    if (n.op_type == "Gemm" && n.inputs.size() > 2 && !n.inputs[2].empty() &&
        n.attr_float("beta", 1.f) != 0.f) {
      // C must be a bias row with beta 1; anything else stays a plain Gemm.
      if (n.attr_float("beta", 1.f) != 1.f || !take_bias(n.inputs[2], plan)) return false;
    }
    extend(plan);
    // Something besides the MatMul (and a Reshape looked through) must fold in; Gemm's own C alone already
    // runs as a bias epilogue. A weight Transpose that no longer runs is enough.
    return plan.weight_transposed || plan.absorbed.size() > (plan.reshape ? 2u : 1u);
  }

 private:
  // b is written by Transpose(W) with perm [1, 0] (or none, which reverses 2 dims) of a 2-D initializer W.
  bool transposed_weight(const std::string& b, std::string* w) const {
    size_t j;
    if (!p_.producer(b, &j)) return false;
    const ir::Node& t = p_.node(j);
    if (t.op_type != "Transpose" || !t.domain.empty() || t.inputs.size() != 1 || t.outputs.size() != 1)
      return false;
    auto it = g_.initializers.find(t.inputs[0]);
    if (it == g_.initializers.end() || it->second.rank() != 2) return false;
    if (t.attr_ints("perm", {1, 0}) != std::vector<int64_t>{1, 0}) return false;
    *w = t.inputs[0];
    return true;
  }

  // c is a constant of N elements shaped [N] or [1, …, 1, N] (no wider than the output): the bias.
  bool take_bias(const std::string& c, Plan& plan) const {
    auto it = g_.initializers.find(c);
    const ir::ValueInfo* out = g_.value(plan.out);
    if (it == g_.initializers.end() || it->second.numel() != plan.n || it->second.rank() < 1) return false;
    if (it->second.dims().back() != plan.n || it->second.dtype() != g_.value(plan.a)->dtype) return false;
    if (!out || !out->shape.has_rank() || it->second.rank() > out->shape.rank()) return false;
    plan.bias = c;
    return true;
  }

  // The one node reading plan.out, if it is op_type (and plan.out no graph output).
  bool next(const Plan& plan, const char* op_type, size_t* j) const {
    return p_.sole_consumer(plan.out, j) && p_.node(*j).op_type == op_type && p_.node(*j).domain.empty();
  }

  void absorb(Plan& plan, size_t j) {
    plan.absorbed.push_back(j);
    plan.out = p_.node(j).outputs[0];
  }

  // Optional Reshape, then bias Add, residual Add, activation, each optional, in that order.
  void extend(Plan& plan) {
    size_t j;
    if (p_.node(plan.origin).op_type == "Gemm" && next(plan, "Reshape", &j) &&
        p_.node(j).inputs[0] == plan.out) {
      const ir::ValueInfo* r = g_.value(p_.node(j).outputs[0]);
      if (r && r->shape.has_rank() && r->shape.rank() >= 1 && r->shape[r->shape.rank() - 1].is_static() &&
          r->shape[r->shape.rank() - 1].value() == plan.n) {
        plan.reshape = j;
        absorb(plan, j);
      }
    }
    if (plan.bias.empty() && next(plan, "Add", &j)) {
      const ir::Node& add = p_.node(j);
      const std::string& c = add.inputs[0] == plan.out ? add.inputs[1] : add.inputs[0];
      if (add.inputs.size() == 2 && c != plan.out && take_bias(c, plan)) absorb(plan, j);
    }
    if (next(plan, "Add", &j)) {
      const ir::Node& add = p_.node(j);
      const std::string& r = add.inputs[0] == plan.out ? add.inputs[1] : add.inputs[0];
      const ir::ValueInfo* ri = g_.value(r);
      const ir::ValueInfo* yi = g_.value(plan.out);
      const ir::ValueInfo* si = g_.value(add.outputs[0]);
      // Same shape as the sum (no broadcasting either way), same dtype.
      if (add.inputs.size() == 2 && r != plan.out && ri && yi && si && ri->dtype == yi->dtype &&
          same_shape(ri->shape, yi->shape) && same_shape(yi->shape, si->shape)) {
        plan.residual = r;
        absorb(plan, j);
      }
    }
    if (next(plan, "Relu", &j)) {
      plan.act = ops::MatMulActivation::kRelu;
      absorb(plan, j);
    } else if (next(plan, "Gelu", &j)) {
      plan.act = p_.node(j).attr_string("approximate", "none") == "tanh" ? ops::MatMulActivation::kGeluTanh
                                                                         : ops::MatMulActivation::kGeluErf;
      absorb(plan, j);
    }
  }

  const ir::Graph& g_;
  const PatternGraph& p_;
};

}  // namespace

Status fuse_matmul_epilogue(ir::Graph& g) {
  PatternGraph pg(g);
  EpilogueMatcher matcher(g, pg);
  std::vector<bool> removed(g.nodes.size(), false);
  std::map<size_t, std::vector<ir::Node>> replace;  // slot -> the nodes that take its place
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (removed[i]) continue;
    Plan plan;
    if (!matcher.match(i, plan)) continue;
    bool free = !plan.transpose || !removed[*plan.transpose];
    for (size_t j : plan.absorbed) free &= !removed[j];
    if (!free) continue;
    const ir::Node& origin = g.nodes[i];
    const DType dt = g.value(plan.a)->dtype;
    ir::Node fused;
    fused.name = origin.name;
    fused.op_type = "FusedMatMul";
    fused.domain = std::string(ops::kKilnDomain);
    fused.attrs["activation"] = ir::Attribute::of_string(ops::matmul_activation_name(plan.act));
    fused.attrs["trans_b"] = ir::Attribute::of_int(plan.trans_b ? 1 : 0);
    fused.attrs["alpha"] = ir::Attribute::of_float(plan.alpha);
    if (!plan.bias.empty() && g.initializers.at(plan.bias).rank() != 1) {
      const Tensor c = g.initializers.at(plan.bias);  // [1, …, 1, N]: stored as [N], the shape the op takes
      const std::string row = g.unique_name(plan.bias + "_row");
      g.initializers[row] = c.reshaped({plan.n});
      g.values[row] = {c.dtype(), Shape({plan.n})};
      plan.bias = row;
    }
    std::vector<ir::Node> nodes;
    std::string residual = plan.residual;
    std::string fused_out = plan.out;
    if (plan.reshape) {
      // 2-D result first, then the Reshape the model had; the residual goes the other way, to [M, N].
      const ir::Node& reshape = g.nodes[*plan.reshape];
      const Shape& a2 = g.value(plan.a)->shape;
      fused_out = g.unique_name(origin.outputs[0] + "_fused");
      g.values[fused_out] = {dt, Shape(std::vector<Dim>{a2[0], Dim(plan.n)})};
      if (!residual.empty()) {
        const std::string shape2 = g.unique_name(fused.name + "_rows_shape");
        g.initializers[shape2] = Tensor::from_vector<int64_t>(DType::kI64, {2}, {-1, plan.n});
        g.values[shape2] = {DType::kI64, Shape({2})};
        ir::Node flat;
        flat.name = g.unique_name(fused.name + "_residual_rows");
        flat.op_type = "Reshape";
        flat.inputs = {residual, shape2};
        residual = g.unique_name(residual + "_rows");
        flat.outputs = {residual};
        g.values[residual] = g.values[fused_out];
        nodes.push_back(std::move(flat));
      }
      ir::Node back = reshape;
      back.inputs[0] = fused_out;
      back.outputs = {plan.out};
      fused.outputs = {fused_out};
      fused.inputs = {plan.a, plan.b, plan.bias, residual};
      nodes.push_back(std::move(fused));
      nodes.push_back(std::move(back));
    } else {
      fused.inputs = {plan.a, plan.b, plan.bias, residual};
      fused.outputs = {plan.out};
      nodes.push_back(std::move(fused));
    }
    for (auto& n : nodes)
      while (n.op_type == "FusedMatMul" && n.inputs.back().empty()) n.inputs.pop_back();
    // Values that no longer exist.
    for (size_t k = 0; k + 1 < plan.absorbed.size(); ++k)
      for (const auto& o : g.nodes[plan.absorbed[k]].outputs) g.values.erase(o);
    for (size_t j : plan.absorbed) removed[j] = true;
    if (plan.transpose) {
      // Read by this node alone: it goes now. Shared with other readers, eliminate_dead_code drops it once
      // they all read the weight directly (or keeps it for those that still need it).
      g.values.erase(g.nodes[*plan.transpose].outputs[0]);
      removed[*plan.transpose] = true;
    }
    replace[plan.absorbed.back()] = std::move(nodes);
  }
  std::vector<ir::Node> out;
  out.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (auto it = replace.find(i); it != replace.end()) {
      for (auto& n : it->second) out.push_back(std::move(n));
    } else if (!removed[i]) {
      out.push_back(std::move(g.nodes[i]));
    }
  }
  g.nodes = std::move(out);
  return Status();
}

}  // namespace kiln::passes
