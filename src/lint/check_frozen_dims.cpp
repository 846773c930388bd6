// Dims the model declares dynamic but that a constant fixes: a Reshape/Expand target the exporter wrote as
// numbers (the size a trace saw), or a fixed-size tensor that a dynamic one must broadcast against.
#include <fmt/format.h>

#include <cctype>

#include "lint/lint_context.h"
#include "util/safe_text.h"

namespace kiln::lint {

namespace {

using S = LintSeverity;

const char* kExportAdvice =
    "make the export compute the target from the input's shape rather than from a Python number: "
    "x.reshape(x.shape[0], -1) with the dim declared dynamic (dynamic_axes / dynamic_shapes), or -1 and 0 "
    "for the "
    "dims that vary; sizes that go through int(), .item() or a Python variable are written into the graph as "
    "constants";

std::vector<int64_t> values_of(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<int64_t>(t.get_as_double(i)));
  return v;
}

// A dim named in the model ("batch"), not an expression inference derived ("197*batch", which a constant
// factor of 197 splits legitimately).
bool plain_symbol(const Dim& d) {
  if (!d.is_symbolic()) return false;
  for (char c : d.symbol_name())
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

std::string list(const std::vector<int64_t>& v) {
  return fmt::format("[{}]", fmt::join(v, ","));
}

// The first graph input with a dynamic leading dim, for Expand targets that fix the batch.
std::optional<std::pair<std::string, Dim>> dynamic_batch_input(const ir::Graph& g) {
  for (const auto& in : g.inputs) {
    const ir::ValueInfo* v = g.value(in);
    if (v && v->shape.has_rank() && v->shape.rank() > 0 && !v->shape[0].is_static())
      return {{in, v->shape[0]}};
  }
  return std::nullopt;
}

class FrozenDims {
 public:
  FrozenDims(LintContext& ctx, const LintGraph& lg) : ctx_(ctx), lg_(lg), g_(lg.graph) {
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      for (const auto& o : g_.nodes[i].outputs) producer_[o] = i;
  }

  void run() {
    for (const auto& n : g_.nodes) {
      if (n.op_type == "Reshape")
        reshape(n);
      else if (n.op_type == "Expand")
        expand(n);
      else if (is_broadcasting(n.op_type))
        broadcast(n);
    }
  }

 private:
  const Shape* shape_of(const std::string& v) const {
    if (v.empty() || lg_.tainted.count(v)) return nullptr;
    const ir::ValueInfo* info = g_.value(v);
    return info && info->shape.has_rank() ? &info->shape : nullptr;
  }
  const Tensor* constant(const std::string& v) const {
    auto it = lg_.constants.find(v);
    return it != lg_.constants.end() ? &it->second : nullptr;
  }

  void reshape(const ir::Node& n) {
    if (n.inputs.size() < 2) return;
    const Shape* data = shape_of(n.inputs[0]);
    const Tensor* target = constant(n.inputs[1]);
    if (!data || !target) return;
    const std::vector<int64_t> t = values_of(*target);
    const bool allowzero = n.attr_int("allowzero", 0) != 0;
    int first_dynamic = -1;
    bool kept = false;  // some dynamic dim survives: copied by a 0, or absorbed by the -1
    for (size_t i = 0; i < t.size(); ++i) kept |= t[i] == -1;
    for (size_t i = 0; i < data->rank(); ++i) {
      if ((*data)[i].is_static()) continue;
      if (first_dynamic < 0) first_dynamic = static_cast<int>(i);
      kept |= i < t.size() && t[i] == 0 && !allowzero;
    }
    if (first_dynamic < 0) return;
    const std::string dim = (*data)[first_dynamic].to_string();
    if (!kept) {
      ctx_.add(S::kWarning, "frozen-dim", n.name, n.op_type, n.inputs[1],
               fmt::format(
                   "Reshape node '{}' reshapes '{}' {} to the constant shape {}: every output dim is a "
                   "number, so the dynamic dim '{}' (dim {}) is frozen at the size the export saw; any other "
                   "size fails at this node",
                   printable(n.name), printable(n.inputs[0]), data->to_string(), list(t), printable(dim),
                   first_dynamic),
               kExportAdvice);
    } else if (plain_symbol((*data)[0]) && !t.empty() && t[0] > 0) {
      ctx_.add(
          S::kWarning, "frozen-dim", n.name, n.op_type, n.inputs[1],
          fmt::format(
              "Reshape node '{}' reshapes '{}' {} to the constant shape {}: the leading dim is fixed at "
              "{} while '{}' has the dynamic leading dim '{}'; at any other size the -1 silently folds "
              "'{}' into another dim",
              printable(n.name), printable(n.inputs[0]), data->to_string(), list(t), t[0],
              printable(n.inputs[0]), printable((*data)[0].to_string()), printable((*data)[0].to_string())),
          kExportAdvice);
    }
  }

  void expand(const ir::Node& n) {
    if (n.inputs.size() < 2) return;
    const Shape* data = shape_of(n.inputs[0]);
    const Tensor* target = constant(n.inputs[1]);
    if (!data || !target || target->numel() == 0) return;
    const std::vector<int64_t> t = values_of(*target);
    if (t.size() < data->rank() || t[0] <= 1) return;
    // The output's dim 0 comes from the target only where the data has no dim there, or a 1.
    const size_t offset = t.size() - data->rank();
    if (offset == 0 && !((*data)[0].is_static() && (*data)[0].value() == 1)) return;
    auto batch = dynamic_batch_input(g_);
    if (!batch) return;
    ctx_.add(
        S::kWarning, "frozen-dim", n.name, n.op_type, n.inputs[1],
        fmt::format(
            "Expand node '{}' expands '{}' {} to the constant shape {}: its leading dim is fixed at {}, "
            "while graph input '{}' has the dynamic leading dim '{}'; at any other batch size the "
            "shapes disagree downstream",
            printable(n.name), printable(n.inputs[0]), data->to_string(), list(t), t[0],
            printable(batch->first), printable(batch->second.to_string())),
        "expand to the batch read from the input's shape (x.expand(inp.shape[0], -1, -1) in a trace with the "
        "dim dynamic), or use -1/1 for that dim so broadcasting follows the input");
  }

  static bool is_broadcasting(const std::string& op) {
    for (const char* b : {"Add",
                          "Sub",
                          "Mul",
                          "Div",
                          "Pow",
                          "Where",
                          "Equal",
                          "Less",
                          "LessOrEqual",
                          "Greater",
                          "GreaterOrEqual",
                          "And",
                          "Or",
                          "Xor",
                          "Max",
                          "Min",
                          "Mod",
                          "Sum",
                          "Mean",
                          "BitShift"})
      if (op == b) return true;
    return false;
  }

  // What made v's dims fixed: the nearest producer with a constant target, or the initializer itself.
  std::string source_of(const std::string& v) const {
    std::string cur = v;
    for (int step = 0; step < 8; ++step) {
      if (g_.is_constant(cur) || lg_.weights.count(cur))
        return fmt::format("initializer '{}'", printable(cur));
      auto it = producer_.find(cur);
      if (it == producer_.end()) return "";
      const ir::Node& p = g_.nodes[it->second];
      for (const char* op :
           {"Reshape", "Expand", "Slice", "Tile", "ConstantOfShape", "Resize", "Range", "Constant"})
        if (p.op_type == op)
          return fmt::format("node '{}' ({}) with constant inputs", printable(p.name), p.op_type);
      std::string next;
      for (const auto& in : p.inputs)
        if (!in.empty() && shape_of(in)) {
          next = in;
          break;
        }
      if (next.empty()) return "";
      cur = next;
    }
    return "";
  }

  void broadcast(const ir::Node& n) {
    for (size_t a = 0; a < n.inputs.size(); ++a)
      for (size_t b = 0; b < n.inputs.size(); ++b) {
        if (a == b) continue;
        const Shape* sa = shape_of(n.inputs[a]);
        const Shape* sb = shape_of(n.inputs[b]);
        if (!sa || !sb) continue;
        const size_t r = std::min(sa->rank(), sb->rank());
        for (size_t k = 1; k <= r; ++k) {
          const Dim& da = (*sa)[sa->rank() - k];
          const Dim& db = (*sb)[sb->rank() - k];
          if (!da.is_symbolic() || !db.is_static() || db.value() <= 1) continue;
          const std::string key = da.symbol_name() + "=" + std::to_string(db.value());
          if (!reported_.insert(key).second) continue;
          const std::string src = source_of(n.inputs[b]);
          ctx_.add(S::kWarning, "frozen-dim", n.name, n.op_type, n.inputs[b],
                   fmt::format(
                       "{} node '{}' broadcasts '{}' {} against '{}' {}: the dynamic dim '{}' meets a fixed "
                       "{}{}, so the model only works when '{}' is {}",
                       n.op_type, printable(n.name), printable(n.inputs[a]), sa->to_string(),
                       printable(n.inputs[b]), sb->to_string(), printable(da.to_string()), db.value(),
                       src.empty() ? "" : " (from " + src + ")", printable(da.to_string()), db.value()),
                   fmt::format(
                       "if '{}' really varies, make the export derive that size from the input (slice a "
                       "table with the input's length, x[:, :inp.shape[1]], rather than a Python number); if "
                       "it does not, declare it as the number {}",
                       printable(da.to_string()), db.value()));
        }
      }
  }

  LintContext& ctx_;
  const LintGraph& lg_;
  const ir::Graph& g_;
  std::map<std::string, size_t> producer_;
  std::set<std::string> reported_;
};

}  // namespace

void check_frozen_dims(LintContext& ctx, const LintGraph& g) {
  FrozenDims(ctx, g).run();
}

}  // namespace kiln::lint
