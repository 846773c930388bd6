// convert_precision: see convert_precision.h. Two steps: plan (per node: does it compute in the target dtype,
// which dtype each input must arrive in, what it then produces) and rewrite (switch initializers, insert
// Casts where a value's dtype and its consumer's disagree, keep I/O names and dtypes), then fold Cast chains.
#include "passes/convert_precision.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "ops/op.h"
#include "passes/pass.h"
#include "util/error.h"
#include "util/nearest_names.h"
#include "kiln/half.h"

namespace kiln::passes {

namespace {

// ---- The op table: what stays f32 and which inputs are parameters with their own type ---------------

enum class NodeKind {
  kCompute,  // converted when it reads f32 data and the backend runs it at the target dtype
  kMove,     // data movement: converted only where its data already is in the target dtype (or is a weight),
             // so no Casts are added just to move f32 data around
  kKeepF32,  // always computes in f32; Casts around it
};

struct OpRule {
  std::string_view op;
  NodeKind kind;
  std::string_view why;  // for kKeepF32, shown in the report
};

constexpr OpRule kOpRules[] = {
    // Exact arithmetic decides a length or a running total: f16 would change the shape or the values.
    {"Range", NodeKind::kKeepF32, "start/limit/delta decide the output length"},
    {"CumSum", NodeKind::kKeepF32, "running sums outgrow f16's range and precision"},
    {"ReduceSumSquare", NodeKind::kKeepF32, "sums of squares overflow f16"},
    // Casts are the model's own precision boundaries; chains they form with the pass's Casts are folded.
    {"Cast", NodeKind::kKeepF32, "a Cast keeps the dtype the model asks for"},
    {"CastLike", NodeKind::kKeepF32, "a Cast keeps the dtype the model asks for"},
    // Dtype from an attribute (value, dtype): the output stays as declared and consumers get a Cast.
    {"ConstantOfShape", NodeKind::kKeepF32, "its dtype is its value attribute"},
    {"Constant", NodeKind::kKeepF32, "its dtype is its value attribute"},
    {"Reshape", NodeKind::kMove, ""},
    {"Transpose", NodeKind::kMove, ""},
    {"Squeeze", NodeKind::kMove, ""},
    {"Unsqueeze", NodeKind::kMove, ""},
    {"Flatten", NodeKind::kMove, ""},
    {"Identity", NodeKind::kMove, ""},
    {"Slice", NodeKind::kMove, ""},
    {"Gather", NodeKind::kMove, ""},
    {"GatherElements", NodeKind::kMove, ""},
    {"GatherND", NodeKind::kMove, ""},
    {"Concat", NodeKind::kMove, ""},
    {"Split", NodeKind::kMove, ""},
    {"Expand", NodeKind::kMove, ""},
    {"Tile", NodeKind::kMove, ""},
    {"Pad", NodeKind::kMove, ""},
    {"DepthToSpace", NodeKind::kMove, ""},
    {"SpaceToDepth", NodeKind::kMove, ""},
};

enum class InputKind {
  kFollow,  // shares the op's type T: an f32 value arrives in the target dtype (the default for every input)
  kKeep,    // a parameter with its own type: arrives in the dtype the model gives it
  kAny,     // only its dims or its own type matter: read in whatever dtype the value already has (no Cast)
};

struct InputRule {
  std::string_view op;
  int index;
  InputKind kind;
  int64_t min_opset;  // the rule applies from this opset on
};

constexpr InputRule kInputRules[] = {
    {"Resize", 1, InputKind::kKeep, 0},    // roi: its own float type T2
    {"Resize", 2, InputKind::kKeep, 0},    // scales: float32 by the spec
    {"Upsample", 1, InputKind::kKeep, 0},  // scales: float32
    // From opset 15 the running mean/var have their own type T2: kept in f32, a small variance stays exact.
    {"BatchNormalization", 3, InputKind::kKeep, 15},
    {"BatchNormalization", 4, InputKind::kKeep, 15},
    {"Pow", 1, InputKind::kAny, 0},  // the exponent has its own type T1; 2.0 or 0.5 need no Cast
    {"Shape", 0, InputKind::kAny, 0},
    {"Size", 0, InputKind::kAny, 0},
    // Listed for the record (the default): these parameters follow T, as the spec requires.
    {"Clip", 1, InputKind::kFollow, 0},
    {"Clip", 2, InputKind::kFollow, 0},
    {"LayerNormalization", 1, InputKind::kFollow, 0},
    {"LayerNormalization", 2, InputKind::kFollow, 0},
    {"BatchNormalization", 1, InputKind::kFollow, 0},
    {"BatchNormalization", 2, InputKind::kFollow, 0},
};

const OpRule* op_rule(std::string_view op) {
  for (const auto& r : kOpRules)
    if (r.op == op) return &r;
  return nullptr;
}

InputKind input_kind(std::string_view op, size_t index, int64_t opset) {
  for (const auto& r : kInputRules)
    if (r.op == op && static_cast<size_t>(r.index) == index && opset >= r.min_opset) return r.kind;
  return InputKind::kFollow;
}

// ---- Helpers ----------------------------------------------------------------------------------------------

// f32 -> f16/bf16 bits, saturating finite values to the largest finite value (torch writes finfo(f32).min for
// masks: as -inf it would turn a fully masked softmax row into NaN).
uint16_t narrow_bits(float f, DType to) {
  if (to == DType::kF16) {
    if (std::isfinite(f)) f = std::clamp(f, -65504.f, 65504.f);
    return float_to_half(f);
  }
  uint16_t b = float_to_bf16(f);
  if (std::isfinite(f) && (b & 0x7fffu) == 0x7f80u) b = static_cast<uint16_t>((b & 0x8000u) | 0x7f7fu);
  return b;
}

Tensor narrow_tensor(const Tensor& t, DType to) {
  Tensor out(to, t.dims());
  const float* src = t.data<float>();
  uint16_t* dst = out.data<uint16_t>();
  for (int64_t i = 0; i < t.numel(); ++i) dst[i] = narrow_bits(src[i], to);
  return out;
}

bool has_subgraph(const ir::Node& n) {
  for (const auto& [k, a] : n.attrs)
    if (a.g) return true;
  return false;
}

void names_read_by_subgraphs(const ir::Graph& g, bool inside, std::set<std::string>& out) {
  for (const auto& n : g.nodes) {
    if (inside) out.insert(n.inputs.begin(), n.inputs.end());
    for (const auto& [k, a] : n.attrs)
      if (a.g) {
        names_read_by_subgraphs(*a.g, true, out);
        out.insert(a.g->outputs.begin(), a.g->outputs.end());
      }
  }
}

bool is_half(DType t) {
  return t == DType::kF16 || t == DType::kBF16;
}

// Cast(Cast(x: a -> b) -> c) equals Cast(x -> c) when b holds every value of a exactly. int -> f32 ->
// f16/bf16 differs from int -> f16/bf16 only by double rounding of integers beyond 2^24 (past f16's range
// anyway).
bool chain_folds(DType a, DType b, DType c) {
  if (a == DType::kUndefined || b == DType::kUndefined) return false;
  if (is_half(a) && (b == DType::kF32 || b == DType::kF64)) return true;
  if (a == DType::kF32 && b == DType::kF64) return true;
  if (a == DType::kBool && b != DType::kUndefined && b != DType::kString) return true;
  if ((a == DType::kI8 || a == DType::kU8) &&
      (is_float(b) || b == DType::kI16 || b == DType::kI32 || b == DType::kI64))
    return true;
  if (is_integer(a) && b == DType::kF32 && is_half(c)) return true;
  return false;
}

// ---- Plan -------------------------------------------------------------------------------------------------

struct NodePlan {
  bool converted = false;
  std::vector<DType> want;  // per input: the dtype it must arrive in
  std::vector<DType> out;   // per output: the dtype it produces
};

class Converter {
 public:
  Converter(ir::Graph& g, const PrecisionOptions& o, PrecisionReport& r) : g_(g), opt_(o), report_(r) {}

  Status run() {
    for (const auto& [name, v] : g_.values) orig_[name] = v.dtype;
    for (const auto& [name, t] : g_.initializers) orig_[name] = t.dtype();
    pinned_.insert(g_.outputs.begin(), g_.outputs.end());
    names_read_by_subgraphs(g_, false, pinned_);
    for (const auto& n : g_.nodes) node_names_.insert(n.name);
    fp32_layers_.insert(opt_.fp32_layers.begin(), opt_.fp32_layers.end());
    plan();
    rewrite();
    fold_cast_chains();
    return Status();
  }

  const std::set<std::string>& added_casts() const { return added_casts_; }

 private:
  DType orig(const std::string& v) const {
    auto it = orig_.find(v);
    return it == orig_.end() ? DType::kUndefined : it->second;
  }
  DType home(const std::string& v) const {
    auto it = home_.find(v);
    return it == home_.end() ? orig(v) : it->second;
  }

  void keep(const ir::Node& n, std::string why) { report_.kept_f32.emplace_back(n.name, std::move(why)); }

  // Decides, node by node in topological order, where each computes and what dtypes flow.
  void plan() {
    const DType target = opt_.target;
    plans_.resize(g_.nodes.size());
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const ir::Node& n = g_.nodes[i];
      NodePlan& p = plans_[i];
      std::vector<InputKind> kinds(n.inputs.size());
      p.want.assign(n.inputs.size(), DType::kUndefined);
      bool reads_f32 = false, foreign_float = false, data_ready = false;
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        if (n.inputs[k].empty()) continue;
        const std::string& v = n.inputs[k];
        kinds[k] = input_kind(n.op_type, k, g_.opset);
        p.want[k] = kinds[k] == InputKind::kAny ? home(v) : orig(v);
        if (kinds[k] != InputKind::kFollow) continue;
        const DType d = orig(v);
        if (d == DType::kF32) {
          reads_f32 = true;
          data_ready |= g_.is_constant(v) || home(v) == target;
        } else if (is_float(d) && d != target) {
          foreign_float = true;
        }
      }
      p.out.clear();
      for (const auto& o : n.outputs) p.out.push_back(o.empty() ? DType::kUndefined : orig(o));

      const OpRule* rule = op_rule(n.op_type);
      const NodeKind kind = rule ? rule->kind : NodeKind::kCompute;
      std::string why;
      if (fp32_layers_.count(n.name)) {
        why = "named in fp32_layers";
      } else if (!reads_f32) {
        // Nothing to convert (shape math, integer ops, sources): untouched.
      } else if (has_subgraph(n)) {
        why = "has a subgraph";
      } else if (kind == NodeKind::kKeepF32) {
        why = "op kept in f32: " + std::string(rule->why);
      } else if (foreign_float) {
        why = "mixes f32 with another float type";
      } else if (kind == NodeKind::kMove && !data_ready) {
        // f32 data moves in f32; its consumer decides.
      } else {
        std::vector<DType> want = p.want;
        for (size_t k = 0; k < n.inputs.size(); ++k)
          if (!n.inputs[k].empty() && kinds[k] == InputKind::kFollow && want[k] == DType::kF32)
            want[k] = target;
        if (opt_.supports && !opt_.supports(n, want)) {
          why = fmt::format("the backend has no {} kernel for it", dtype_name(target));
        } else {
          std::vector<ir::ValueInfo> infos(n.inputs.size());
          std::vector<const ir::ValueInfo*> info_ptrs(n.inputs.size(), nullptr);
          std::vector<const Tensor*> values(n.inputs.size(), nullptr);
          for (size_t k = 0; k < n.inputs.size(); ++k) {
            if (n.inputs[k].empty()) continue;
            const ir::ValueInfo* vi = g_.value(n.inputs[k]);
            infos[k].dtype = want[k];
            if (vi) infos[k].shape = vi->shape;
            info_ptrs[k] = &infos[k];
            if (auto c = g_.initializers.find(n.inputs[k]); c != g_.initializers.end())
              values[k] = &c->second;
          }
          ops::InferContext ctx(n, g_.opset, info_ptrs, values);
          Status st = ops::infer_node(n, g_.opset, ctx);
          if (!st.ok()) {
            why = "its type rules reject " + std::string(dtype_name(target)) + ": " + st.message();
          } else {
            p.converted = true;
            p.want = std::move(want);
            for (size_t k = 0; k < n.outputs.size(); ++k)
              if (!n.outputs[k].empty() && ctx.outputs()[k].dtype != DType::kUndefined)
                p.out[k] = ctx.outputs()[k].dtype;
          }
        }
      }
      if (!why.empty()) keep(n, why);
      report_.converted_nodes += p.converted;
      for (size_t k = 0; k < n.outputs.size(); ++k)
        if (!n.outputs[k].empty()) home_[n.outputs[k]] = p.out[k];
    }
  }

  std::string unique_node_name(const std::string& base) {
    std::string n = base;
    for (int i = 1; node_names_.count(n); ++i) n = fmt::format("{}_{}", base, i);
    node_names_.insert(n);
    return n;
  }

  ir::Node make_cast(const std::string& from, const std::string& to, DType dt) {
    ir::Node c;
    c.name = unique_node_name("kiln_cast_" + from + "_to_" + std::string(dtype_name(dt)));
    c.op_type = "Cast";
    c.inputs = {from};
    c.outputs = {to};
    c.attrs["to"] = ir::Attribute::of_int(static_cast<int64_t>(dt));
    added_casts_.insert(c.name);
    return c;
  }

  std::string new_value(const std::string& base, DType dt, const Shape& shape) {
    std::string n = g_.unique_name(base + "_" + std::string(dtype_name(dt)));
    g_.values[n] = {dt, shape};
    return n;
  }

  // The name holding value v in dtype dt: an existing version, a converted weight copy, or a new Cast.
  std::string version(const std::string& v, DType dt, std::vector<ir::Node>& out) {
    auto& vs = versions_[v];
    if (auto it = vs.find(dt); it != vs.end()) return it->second;
    if (vs.empty() || dt == DType::kUndefined) return v;  // not produced in this graph (outer scope)
    const Shape shape = g_.values.count(v) ? g_.values[v].shape : Shape();
    if (g_.is_constant(v) && orig(v) == DType::kF32 && dt == opt_.target) {
      std::string n = new_value(v, dt, shape);
      g_.initializers[n] = narrow_tensor(g_.initializers.at(v), dt);
      return vs[dt] = n;
    }
    std::string n = new_value(v, dt, shape);
    out.push_back(make_cast(home_name_.at(v), n, dt));
    return vs[dt] = n;
  }

  void rewrite() {
    const DType target = opt_.target;
    for (const auto& in : g_.inputs) {
      versions_[in][orig(in)] = in;
      home_name_[in] = in;
    }
    // A weight read only in the target dtype converts in place (it keeps its name); otherwise it gets a copy.
    std::map<std::string, std::set<DType>> weight_wants;
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      for (size_t k = 0; k < g_.nodes[i].inputs.size(); ++k) {
        const std::string& v = g_.nodes[i].inputs[k];
        if (!v.empty() && g_.is_constant(v)) weight_wants[v].insert(plans_[i].want[k]);
      }
    for (auto& [name, t] : g_.initializers) {
      home_name_[name] = name;
      const auto& wants = weight_wants[name];
      if (t.dtype() == DType::kF32 && wants.size() == 1 && *wants.begin() == target && !pinned_.count(name)) {
        t = narrow_tensor(t, target);
        g_.values[name].dtype = target;
        versions_[name][target] = name;
      } else {
        versions_[name][t.dtype()] = name;
      }
    }
    std::vector<ir::Node> out;
    out.reserve(g_.nodes.size() * 2);
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      ir::Node n = std::move(g_.nodes[i]);
      const NodePlan& p = plans_[i];
      for (size_t k = 0; k < n.inputs.size(); ++k)
        if (!n.inputs[k].empty()) n.inputs[k] = version(n.inputs[k], p.want[k], out);
      std::vector<ir::Node> after;
      for (size_t k = 0; k < n.outputs.size(); ++k) {
        const std::string o = n.outputs[k];
        if (o.empty()) continue;
        const DType now = p.out[k], before = orig(o);
        home_name_[o] = o;
        if (now == before || now == DType::kUndefined) {
          versions_[o][before] = o;
        } else if (pinned_.count(o)) {
          // Graph outputs and values read by subgraphs keep their name and dtype: produce under a new name,
          // Cast back.
          std::string renamed = new_value(o, now, g_.values[o].shape);
          n.outputs[k] = renamed;
          after.push_back(make_cast(renamed, o, before));
          versions_[o][now] = renamed;
          versions_[o][before] = o;
          home_name_[o] = renamed;
        } else {
          g_.values[o].dtype = now;
          versions_[o][now] = o;
        }
      }
      out.push_back(std::move(n));
      for (auto& c : after) out.push_back(std::move(c));
    }
    g_.nodes = std::move(out);
  }

  // Cast(Cast(x)) -> Cast(x) where the middle dtype loses nothing; at least one of the two is the pass's.
  void fold_cast_chains() {
    std::map<std::string, size_t> producer;
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      for (const auto& o : g_.nodes[i].outputs)
        if (!o.empty()) producer[o] = i;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      ir::Node& n = g_.nodes[i];
      if (n.op_type != "Cast" || n.inputs.empty()) continue;
      const auto to = dtype_from_onnx(static_cast<int32_t>(n.attr_int("to", 0)));
      if (!to) continue;
      for (;;) {
        auto p = producer.find(n.inputs[0]);
        if (p == producer.end()) break;
        const ir::Node& prev = g_.nodes[p->second];
        if (prev.op_type != "Cast" || prev.inputs.empty() || prev.inputs[0].empty()) break;
        if (!added_casts_.count(n.name) && !added_casts_.count(prev.name)) break;
        const ir::ValueInfo* a = g_.value(prev.inputs[0]);
        const ir::ValueInfo* b = g_.value(n.inputs[0]);
        if (!a || !b || !chain_folds(a->dtype, b->dtype, *to)) break;
        n.inputs[0] = prev.inputs[0];
      }
    }
  }

  ir::Graph& g_;
  const PrecisionOptions& opt_;
  PrecisionReport& report_;
  std::map<std::string, DType> orig_;  // dtypes as the model declares them
  std::map<std::string, DType> home_;  // dtypes as planned
  std::set<std::string> pinned_;       // names whose dtype must not change
  std::set<std::string> fp32_layers_;
  std::set<std::string> node_names_;
  std::vector<NodePlan> plans_;
  std::map<std::string, std::map<DType, std::string>> versions_;  // value -> dtype -> name holding it
  std::map<std::string, std::string> home_name_;                  // value -> the name its producer writes
  std::set<std::string> added_casts_;
};

}  // namespace

Status check_node_names(const ir::Graph& g, const std::vector<std::string>& names, const std::string& what) {
  std::set<std::string> known;
  for (const auto& n : g.nodes) known.insert(n.name);
  std::vector<std::string> problems;
  for (const auto& name : names) {
    if (known.count(name)) continue;
    std::vector<std::string> nearest;
    for (const auto& k : nearest_names(name, known)) nearest.push_back("'" + k + "'");
    problems.push_back(
        nearest.empty() ? fmt::format("{} names node '{}', but the model has no nodes", what, name)
                        : fmt::format("{} names node '{}', which is not in the model; nearest node names: {}",
                                      what, name, fmt::join(nearest, ", ")));
  }
  if (problems.empty()) return Status();
  return invalid_argument("{} (names are the model's ONNX node names)", fmt::join(problems, "; "));
}

Status convert_precision(ir::Graph& g, const PrecisionOptions& options, PrecisionReport* report) {
  if (options.target != DType::kF16 && options.target != DType::kBF16)
    return invalid_argument("convert_precision converts to f16 or bf16, not {}", dtype_name(options.target));
  KILN_RETURN_IF_ERROR(check_node_names(g, options.fp32_layers, "fp32_layers"));
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  PrecisionReport local;
  PrecisionReport& r = report ? *report : local;
  r = {};
  Converter c(g, options, r);
  KILN_RETURN_IF_ERROR(c.run());
  // Casts that became no-ops (f16 -> f16 after folding) and Casts nobody reads any more go.
  KILN_RETURN_IF_ERROR(remove_identities(g));
  KILN_RETURN_IF_ERROR(eliminate_dead_code(g));
  for (const auto& n : g.nodes) r.casts_added += c.added_casts().count(n.name) != 0;
  return infer_shapes(g).with_context("after convert_precision");
}

}  // namespace kiln::passes
