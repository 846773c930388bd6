// Chains of elementwise nodes become one PointwiseChain (kiln domain) that reads each input once and writes
// each output once, instead of a full read and write of memory per node.
//
// What a node turns into is data: kRules maps an ONNX op (and an attribute value or opset range) to one
// statement of the program language (ops/pointwise_chain.h), with $i for the node's input i ("$1:-inf" when
// it is optional) and @name:default for a float attribute. A node qualifies when a rule matches, its output
// and inputs are floats (a bool Where condition too) and its output's shape is known.
//
// Chains grow backwards from a sink (nodes visited last to first): a producer joins when every reader of its
// output is already in the chain, its output has the sink's shape (broadcast inputs are fine) and the chain
// stays within kPwMaxInputs inputs. An intermediate that is a graph output becomes another output of the
// fused node; one with a reader outside the chain (or in a subgraph) ends the chain there. Since only the
// sink's outputs leave the chain, the fused node can take the sink's place without creating a cycle.
//
// Nodes that the GEMM/conv epilogue fusions take are left alone: an Add/Relu/Gelu/Sigmoid reading the output
// of a MatMul/Gemm/Conv with a constant weight (this pass runs after those fusions, which only skip such a
// pair when something made it unfusable; the pair is still better served by a later epilogue than by a
// separate kernel).
//
// One-element float initializers are baked into the program as constants (the `constants` attribute); runtime
// inputs never are, however small, so a model's scalar inputs stay inputs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "ops/op.h"
#include "ops/pointwise_chain.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

struct Rule {
  std::string_view op;
  std::string_view when;  // "" or "attr=value" (the attribute's default applies when it is absent)
  std::string_view expr;  // one statement's right-hand side
  int64_t min_opset = 0;
  int64_t max_opset = 1 << 30;
};

const Rule kRules[] = {
    {"Add", "", "add($0,$1)"},
    {"Sub", "", "sub($0,$1)"},
    {"Mul", "", "mul($0,$1)"},
    {"Div", "", "div($0,$1)"},
    {"Pow", "", "pow($0,$1)"},
    {"Max", "", "max($0,$1)"},
    {"Min", "", "min($0,$1)"},
    {"PRelu", "", "prelu($0,$1)", 9},
    {"Relu", "", "relu($0)"},
    {"Sigmoid", "", "sigmoid($0)"},
    {"Tanh", "", "tanh($0)"},
    {"Erf", "", "erf($0)"},
    {"Exp", "", "exp($0)"},
    {"Log", "", "log($0)"},
    {"Sqrt", "", "sqrt($0)"},
    {"Neg", "", "neg($0)"},
    {"Abs", "", "abs($0)"},
    {"Reciprocal", "", "reciprocal($0)"},
    {"Softplus", "", "softplus($0)"},
    {"HardSwish", "", "hard_swish($0)"},
    {"Gelu", "approximate=none", "gelu($0)"},
    {"Gelu", "approximate=tanh", "gelu_tanh($0)"},
    {"LeakyRelu", "", "leaky_relu($0,@alpha:0.01)"},
    {"Elu", "", "elu($0,@alpha:1)"},
    {"HardSigmoid", "", "hard_sigmoid($0,@alpha:0.2,@beta:0.5)"},
    {"Clip", "", "clip($0,$1:-inf,$2:inf)", 11},
    {"Clip", "", "clip($0,@min:-inf,@max:inf)", 0, 10},
    {"Where", "", "where($0,$1,$2)"},
    {"Cast", "to=1", "cast_f32($0)"},
    {"Cast", "to=10", "cast_f16($0)"},
    {"Cast", "to=16", "cast_bf16($0)"},
    {"Cast", "to=11", "cast_f64($0)"},
};

// Ops the epilogue fusions (fuse_matmul_epilogue, fuse_conv_act) want right after a weight-bearing producer.
const std::set<std::string_view> kEpilogueOps = {"Add", "Relu", "Gelu", "Sigmoid"};
const std::set<std::string_view> kWeightProducers = {"MatMul", "Gemm", "Conv"};

// Defaults of the attributes rules test.
std::string attr_text(const ir::Node& n, const std::string& key) {
  if (key == "approximate") return n.attr_string(key, "none");
  if (const ir::Attribute* a = n.attr(key)) {
    if (a->kind == ir::Attribute::Kind::kInt) return std::to_string(a->i);
    if (a->kind == ir::Attribute::Kind::kString) return a->s;
  }
  return "";
}

const Rule* find_rule(const ir::Node& n, int64_t opset) {
  if (!n.domain.empty() || n.outputs.size() != 1) return nullptr;
  for (const Rule& r : kRules) {
    if (r.op != n.op_type || opset < r.min_opset || opset > r.max_opset) continue;
    if (!r.when.empty()) {
      const size_t eq = r.when.find('=');
      if (attr_text(n, std::string(r.when.substr(0, eq))) != r.when.substr(eq + 1)) continue;
    }
    return &r;
  }
  return nullptr;
}

// Highest $i a rule reads, +1: the node may have no more inputs than that.
size_t rule_inputs(const Rule& r) {
  size_t n = 0;
  for (size_t i = 0; i + 1 < r.expr.size(); ++i)
    if (r.expr[i] == '$') n = std::max<size_t>(n, static_cast<size_t>(r.expr[i + 1] - '0') + 1);
  return n;
}

bool same_shape(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i)
    if (!a[i].same_as(b[i])) return false;
  return true;
}

void subgraph_reads(const ir::Graph& g, std::set<std::string>& out) {
  for (const auto& n : g.nodes) {
    out.insert(n.inputs.begin(), n.inputs.end());
    for (const auto& [k, a] : n.attrs)
      if (a.g) subgraph_reads(*a.g, out);
  }
  out.insert(g.outputs.begin(), g.outputs.end());
}

class ChainBuilder {
 public:
  explicit ChainBuilder(ir::Graph& g) : g_(g), p_(g) {
    for (const auto& n : g.nodes)
      for (const auto& [k, a] : n.attrs)
        if (a.g) subgraph_reads(*a.g, subgraph_read_);
    graph_outputs_.insert(g.outputs.begin(), g.outputs.end());
    rule_.resize(g.nodes.size(), nullptr);
    for (size_t i = 0; i < g.nodes.size(); ++i) rule_[i] = qualifies(i);
  }

  Status run() {
    std::vector<bool> taken(g_.nodes.size(), false), removed(g_.nodes.size(), false);
    std::map<size_t, ir::Node> replace;
    for (size_t s = g_.nodes.size(); s-- > 0;) {
      if (!rule_[s] || taken[s]) continue;
      std::set<size_t> chain = grow(s, taken);
      taken[s] = true;
      if (chain.size() < 2) continue;
      std::optional<ir::Node> fused = build(chain, s);
      if (!fused) continue;
      for (size_t i : chain) taken[i] = removed[i] = true;
      replace[s] = std::move(*fused);
    }
    for (auto& [s, node] : replace) {
      g_.nodes[s] = std::move(node);
      removed[s] = false;
    }
    erase_removed(g_, removed);
    return Status();
  }

 private:
  const Rule* qualifies(size_t i) const {
    const ir::Node& n = g_.nodes[i];
    const Rule* r = find_rule(n, g_.opset);
    if (!r || n.inputs.size() > rule_inputs(*r) || n.inputs.empty() || n.inputs[0].empty()) return nullptr;
    const ir::ValueInfo* out = g_.value(n.outputs[0]);
    if (!out || !is_float(out->dtype) || !out->shape.has_rank()) return nullptr;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (n.inputs[k].empty()) continue;
      const ir::ValueInfo* in = g_.value(n.inputs[k]);
      if (!in || !in->shape.has_rank()) return nullptr;
      const bool cond = n.op_type == "Where" && k == 0;
      if (cond ? in->dtype != DType::kBool : !is_float(in->dtype)) return nullptr;
    }
    if (kEpilogueOps.count(n.op_type)) {
      for (const auto& v : n.inputs) {
        size_t pi;
        if (v.empty() || !p_.producer(v, &pi)) continue;
        const ir::Node& prod = g_.nodes[pi];
        if (prod.domain.empty() && kWeightProducers.count(prod.op_type) && prod.inputs.size() > 1 &&
            g_.is_constant(prod.inputs[1]))
          return nullptr;
      }
    }
    return r;
  }

  // Value v (written by a chain node) may stay inside the chain: read only by chain nodes, not by a subgraph.
  bool internal_ok(const std::string& v, const std::set<size_t>& chain) const {
    if (subgraph_read_.count(v)) return false;
    for (size_t c : p_.consumers(v))
      if (!chain.count(c)) return false;
    return true;
  }

  // External inputs of the chain that are not baked constants.
  std::set<std::string> tensor_inputs(const std::set<size_t>& chain) const {
    std::set<std::string> produced, ins;
    for (size_t i : chain) produced.insert(g_.nodes[i].outputs[0]);
    for (size_t i : chain)
      for (const auto& v : g_.nodes[i].inputs)
        if (!v.empty() && !produced.count(v) && !bakeable(v)) ins.insert(v);
    return ins;
  }

  bool bakeable(const std::string& v) const {
    auto it = g_.initializers.find(v);
    if (it == g_.initializers.end() || it->second.numel() != 1 || !is_float(it->second.dtype())) return false;
    const double d = it->second.get_as_double(0);
    return std::isnan(d) || static_cast<double>(static_cast<float>(d)) == d;  // exact as a float attribute
  }

  std::set<size_t> grow(size_t s, const std::vector<bool>& taken) const {
    const Shape& shape = g_.value(g_.nodes[s].outputs[0])->shape;
    std::set<size_t> chain = {s};
    for (bool changed = true; changed;) {
      changed = false;
      for (auto it = chain.rbegin(); it != chain.rend() && !changed; ++it) {
        for (const auto& v : g_.nodes[*it].inputs) {
          size_t pi;
          if (v.empty() || !p_.producer(v, &pi) || chain.count(pi) || taken[pi] || !rule_[pi]) continue;
          if (!same_shape(g_.value(v)->shape, shape)) continue;
          std::set<size_t> bigger = chain;
          bigger.insert(pi);
          if (!internal_ok(v, bigger)) continue;
          if (tensor_inputs(bigger).size() > static_cast<size_t>(ops::kPwMaxInputs)) continue;
          chain = std::move(bigger);
          changed = true;
          break;
        }
      }
    }
    return chain;
  }

  // The PointwiseChain for the chain whose sink is s, or nothing when it cannot be written.
  std::optional<ir::Node> build(const std::set<size_t>& chain, size_t s) {
    const Shape& shape = g_.value(g_.nodes[s].outputs[0])->shape;
    std::set<std::string> tensors = tensor_inputs(chain);
    if (tensors.empty()) return std::nullopt;  // all constants: fold_constants' business
    // Baking a constant must not lose its rank: the remaining inputs alone must broadcast to the chain's
    // rank.
    size_t max_rank = 0;
    for (const auto& v : tensors) max_rank = std::max(max_rank, g_.value(v)->shape.rank());
    std::set<std::string> kept_constants;
    if (max_rank < shape.rank())
      for (size_t i : chain)
        for (const auto& v : g_.nodes[i].inputs)
          if (!v.empty() && bakeable(v) && g_.initializers.at(v).rank() > max_rank) kept_constants.insert(v);
    if (tensors.size() + kept_constants.size() > static_cast<size_t>(ops::kPwMaxInputs)) return std::nullopt;

    ir::Node fused;
    fused.name = g_.nodes[s].name;
    fused.op_type = "PointwiseChain";
    fused.domain = std::string(ops::kKilnDomain);
    std::map<std::string, std::string> names;  // graph value -> program operand
    std::vector<float> constants;
    auto constant = [&](float f) {
      for (size_t k = 0; k < constants.size(); ++k)
        if (std::memcmp(&constants[k], &f, sizeof f) == 0) return "c" + std::to_string(k);
      constants.push_back(f);
      return "c" + std::to_string(constants.size() - 1);
    };
    auto operand = [&](const std::string& v) {
      if (auto it = names.find(v); it != names.end()) return it->second;
      if (bakeable(v) && !kept_constants.count(v))
        return names[v] = constant(static_cast<float>(g_.initializers.at(v).get_as_double(0)));
      names[v] = "x" + std::to_string(fused.inputs.size());
      fused.inputs.push_back(v);
      return names[v];
    };
    // Outputs: the sink's, then intermediates that are graph outputs, in node order.
    std::vector<std::string> outs = {g_.nodes[s].outputs[0]};
    for (size_t i : chain)
      if (i != s && graph_outputs_.count(g_.nodes[i].outputs[0])) outs.push_back(g_.nodes[i].outputs[0]);
    std::string program;
    int temps = 0;
    for (size_t i : chain) {  // ascending index: topological
      const ir::Node& n = g_.nodes[i];
      const std::string_view expr = rule_[i]->expr;
      std::string stmt;
      for (size_t c = 0; c < expr.size(); ++c) {
        if (expr[c] != '$' && expr[c] != '@') {
          stmt += expr[c];
          continue;
        }
        const bool input = expr[c] == '$';
        size_t e = c + 1;
        while (e < expr.size() && expr[e] != ',' && expr[e] != ')') ++e;
        const std::string_view ref = expr.substr(c + 1, e - c - 1);
        const size_t colon = ref.find(':');
        const std::string key(ref.substr(0, colon));
        const std::string def = colon == std::string_view::npos ? "" : std::string(ref.substr(colon + 1));
        const float fallback = def.empty() ? 0.f : std::strtof(def.c_str(), nullptr);
        if (input) {
          const size_t k = static_cast<size_t>(std::stoi(key));
          if (k < n.inputs.size() && !n.inputs[k].empty())
            stmt += operand(n.inputs[k]);
          else if (!def.empty())
            stmt += constant(fallback);
          else
            return std::nullopt;  // a required input is missing: inference would have said so
        } else {
          stmt += constant(n.attr_float(key, fallback));
        }
        c = e - 1;
      }
      const std::string& out = n.outputs[0];
      std::string name;
      for (size_t k = 0; k < outs.size(); ++k)
        if (outs[k] == out) name = "y" + std::to_string(k);
      if (name.empty()) name = "t" + std::to_string(temps++);
      names[out] = name;
      program += (program.empty() ? "" : ";") + name + "=" + stmt;
    }
    // The program must parse and type-check against the real inputs, or the chain stays as it was.
    auto prog = ops::parse_pointwise_program(program);
    if (!prog.ok()) return std::nullopt;
    std::vector<DType> dts;
    for (const auto& v : fused.inputs) dts.push_back(g_.value(v)->dtype);
    if (!ops::pointwise_step_dtypes(*prog, dts).ok()) return std::nullopt;
    fused.outputs = outs;
    fused.attrs[ops::kPwProgramAttr] = ir::Attribute::of_string(program);
    if (!constants.empty()) fused.attrs[ops::kPwConstantsAttr] = ir::Attribute::of_floats(constants);
    for (size_t i : chain)
      if (std::find(outs.begin(), outs.end(), g_.nodes[i].outputs[0]) == outs.end())
        g_.values.erase(g_.nodes[i].outputs[0]);
    return fused;
  }

  ir::Graph& g_;
  PatternGraph p_;
  std::set<std::string> subgraph_read_;
  std::set<std::string> graph_outputs_;
  std::vector<const Rule*> rule_;
};

}  // namespace

Status fuse_pointwise(ir::Graph& g) {
  return ChainBuilder(g).run();
}

}  // namespace kiln::passes
