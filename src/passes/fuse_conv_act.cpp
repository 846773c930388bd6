// Fuses a Conv with what follows it into one FusedConv (kiln domain), so the GPU runs one cuDNN call
// (convolution + bias + residual + activation) instead of three kernels and two round trips through memory:
//   Conv -> Relu                        => FusedConv(activation=relu)
//   Conv -> Add(residual) -> Relu       => FusedConv(Z=residual, activation=relu)   (ResNet's block ends)
//   Conv -> Sigmoid                     => FusedConv(activation=sigmoid)
//   Conv -> Mul(y, Sigmoid(y))          => FusedConv(activation=silu)               (SiLU as exporters write
//   it)
//   Conv -> Clip(constant bounds)       => FusedConv(activation=clip, clip_min, clip_max)   (ReLU6)
//   Conv -> HardSwish, or Mul(y, HardSigmoid(y)) with HardSwish's alpha 1/6 and beta 1/2
//                                       => FusedConv(activation=hardswish)          (MobileNetV3)
//   Conv -> Add(residual)               => FusedConv(Z=residual)                    (a plain skip join)
//   Conv alone                          => FusedConv(activation=none)
// Every Conv becomes a FusedConv, even with nothing to fuse: on the GPU FusedConv is the cuDNN path with
// measured algorithms (and the one that takes the channels-last layout of passes/conv_layout), which plain
// Conv's kernel is not.
// Only when every intermediate value has no other reader (no other node, graph output or subgraph body), and
// the residual has exactly the conv output's shape (Z is added without broadcasting). The fused node takes
// the Conv's name and the last node's output and sits where that last node was, after all of its inputs.
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "ops/op.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

// Provably the same shape: equal ranks, each dim static-equal or the same symbol.
bool same_shape(const ir::ValueInfo* a, const ir::ValueInfo* b) {
  if (!a || !b || !a->shape.has_rank() || !b->shape.has_rank() || a->shape.rank() != b->shape.rank())
    return false;
  for (size_t d = 0; d < a->shape.rank(); ++d)
    if (!a->shape[d].same_as(b->shape[d])) return false;
  return a->dtype == b->dtype;
}

struct Fuser {
  ir::Graph& g;
  std::set<std::string> pinned;
  std::map<std::string, std::vector<size_t>> uses;
  std::vector<bool> removed;

  // The node that is the only reader of v (read once), or null.
  ir::Node* sole_consumer(const std::string& v, size_t* index) {
    if (pinned.count(v)) return nullptr;
    auto u = uses.find(v);
    if (u == uses.end() || u->second.size() != 1 || removed[u->second[0]]) return nullptr;
    *index = u->second[0];
    return &g.nodes[*index];
  }
  bool single_output(const ir::Node& n) const { return n.outputs.size() == 1 && !n.outputs[0].empty(); }
  bool plain(const ir::Node& n, const char* op) const { return n.op_type == op && n.domain.empty(); }

  // Replaces the chain conv .. last (indices) with one FusedConv at last's position.
  void fuse(size_t conv_i, const std::vector<size_t>& chain, const std::string& z, const char* act,
            std::optional<std::pair<float, float>> clip = std::nullopt) {
    const ir::Node& conv = g.nodes[conv_i];
    ir::Node f;
    f.name = conv.name;
    f.op_type = "FusedConv";
    f.domain = std::string(ops::kKilnDomain);
    f.attrs = conv.attrs;
    f.attrs["activation"] = ir::Attribute::of_string(act);
    if (clip) {
      f.attrs["clip_min"] = ir::Attribute::of_float(clip->first);
      f.attrs["clip_max"] = ir::Attribute::of_float(clip->second);
    }
    f.inputs = {conv.inputs[0], conv.inputs[1], conv.inputs.size() > 2 ? conv.inputs[2] : std::string()};
    if (!z.empty()) f.inputs.push_back(z);
    while (!f.inputs.empty() && f.inputs.back().empty()) f.inputs.pop_back();
    const size_t last = chain.back();
    f.outputs = {g.nodes[last].outputs[0]};
    removed[conv_i] = true;
    for (size_t c : chain) removed[c] = true;
    removed[last] = false;
    g.nodes[last] = std::move(f);
  }

  bool try_fuse(size_t i) {
    const ir::Node& conv = g.nodes[i];
    if (!plain(conv, "Conv") || conv.inputs.size() < 2 || !single_output(conv)) return false;
    const std::string y = conv.outputs[0];
    size_t ni = 0;
    ir::Node* next = sole_consumer(y, &ni);
    if (!next || !single_output(*next)) {
      // SiLU / HardSwish: y is read by exactly Sigmoid(y) (HardSigmoid(y)) and Mul(y, s).
      return try_gated(i, y, "Sigmoid", "silu") || try_gated(i, y, "HardSigmoid", "hardswish");
    }
    if (plain(*next, "HardSwish")) {
      fuse(i, {ni}, "", "hardswish");
      return true;
    }
    if (plain(*next, "Clip")) {
      auto bounds = clip_bounds(*next);
      if (!bounds) return false;
      fuse(i, {ni}, "", "clip", bounds);
      return true;
    }
    if (plain(*next, "Relu")) {
      fuse(i, {ni}, "", "relu");
      return true;
    }
    if (plain(*next, "Sigmoid")) {
      fuse(i, {ni}, "", "sigmoid");
      return true;
    }
    if (plain(*next, "Add") && next->inputs.size() == 2) {
      const std::string z = next->inputs[0] == y ? next->inputs[1] : next->inputs[0];
      if (z == y || z.empty()) return false;
      // The Add must not broadcast: the residual has the conv output's shape (then so has the sum).
      if (!same_shape(g.value(z), g.value(y))) return false;
      size_t ri = 0;
      ir::Node* relu = sole_consumer(next->outputs[0], &ri);
      if (relu && plain(*relu, "Relu") && single_output(*relu))
        fuse(i, {ni, ri}, z, "relu");
      else
        fuse(i, {ni}, z, "none");
      return true;
    }
    return false;
  }

  // A Conv that nothing fused with: the same node as FusedConv(activation=none), in place.
  void convert_alone(size_t i) { fuse(i, {i}, "", "none"); }

  // A constant scalar input of a node (an initializer), or nullopt.
  std::optional<float> constant_scalar(const std::string& name) const {
    auto it = g.initializers.find(name);
    if (it == g.initializers.end() || it->second.numel() != 1) return std::nullopt;
    return static_cast<float>(it->second.get_as_double(0));
  }

  // Clip's bounds when they are constants (attributes before opset 11, inputs after); absent = unbounded.
  std::optional<std::pair<float, float>> clip_bounds(const ir::Node& clip) const {
    const float inf = std::numeric_limits<float>::infinity();
    std::pair<float, float> b{clip.attr_float("min", -inf), clip.attr_float("max", inf)};
    for (size_t k = 1; k < clip.inputs.size() && k < 3; ++k) {
      if (clip.inputs[k].empty()) continue;
      std::optional<float> v = constant_scalar(clip.inputs[k]);
      if (!v) return std::nullopt;
      (k == 1 ? b.first : b.second) = *v;
    }
    if (std::isnan(b.first) || std::isnan(b.second) || b.first > b.second) return std::nullopt;
    return b;
  }

  // Mul(y, gate(y)): gate "Sigmoid" makes SiLU; "HardSigmoid" with HardSwish's alpha 1/6 and beta 1/2 makes
  // HardSwish.
  bool try_gated(size_t i, const std::string& y, const char* gate_op, const char* act) {
    if (pinned.count(y)) return false;
    auto u = uses.find(y);
    if (u == uses.end() || u->second.size() != 2) return false;
    size_t si = u->second[0], mi = u->second[1];
    if (g.nodes[si].op_type != gate_op) std::swap(si, mi);
    if (si == mi || removed[si] || removed[mi]) return false;
    const ir::Node& sig = g.nodes[si];
    const ir::Node& mul = g.nodes[mi];
    if (!plain(sig, gate_op) || !single_output(sig) || !plain(mul, "Mul") || !single_output(mul) ||
        mul.inputs.size() != 2)
      return false;
    if (std::string(gate_op) == "HardSigmoid" &&
        (std::fabs(sig.attr_float("alpha", 0.2f) - 1.f / 6.f) > 1e-6f || sig.attr_float("beta", 0.5f) != 0.5f))
      return false;
    const std::string& s = sig.outputs[0];
    if (!((mul.inputs[0] == y && mul.inputs[1] == s) || (mul.inputs[0] == s && mul.inputs[1] == y)))
      return false;
    size_t only = 0;
    if (sole_consumer(s, &only) == nullptr || only != mi) return false;
    fuse(i, {si, mi}, "", act);
    return true;
  }
};

}  // namespace

Status fuse_conv_act(ir::Graph& g) {
  Fuser f{g, {}, g.consumers(), std::vector<bool>(g.nodes.size(), false)};
  f.pinned.insert(g.outputs.begin(), g.outputs.end());
  f.pinned.merge(subgraph_read_names(g));
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!f.removed[i] && !f.try_fuse(i)) {
      const ir::Node& n = g.nodes[i];
      if (f.plain(n, "Conv") && n.inputs.size() >= 2 && f.single_output(n)) f.convert_alone(i);
    }
  std::vector<ir::Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!f.removed[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return Status();
}

}  // namespace kiln::passes
