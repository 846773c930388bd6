#include "compare_report.h"

#include <fmt/format.h>

#include <cmath>

namespace kiln::cli {

namespace {

constexpr size_t kMaxLayerLines = 5;  // text report: layers over tolerance shown per shape (JSON has all)

std::string index_text(const std::vector<int64_t>& idx) { return fmt::format("[{}]", fmt::join(idx, ",")); }

std::string dims_text(const std::map<std::string, std::vector<int64_t>>& dims) {
  std::vector<std::string> parts;
  for (const auto& [name, d] : dims) parts.push_back(fmt::format("{} {}", name, dims_to_string(d)));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string metrics_text(const compare::TensorComparison& c) {
  if (!c.error.empty()) return c.error;
  std::string s = fmt::format("max_abs {:.3g}  mean_abs {:.3g}  max_rel {:.3g}  mean_rel {:.3g}  cosine {:.7f}  "
                              "over {}/{}",
                              c.max_abs, c.mean_abs, c.max_rel, c.mean_rel, c.cosine, c.over_tolerance, c.elements);
  if (c.nonfinite) s += fmt::format(" ({} non-finite)", c.nonfinite);
  if (!c.worst_index.empty() || c.elements == 1)
    s += fmt::format("  worst {} {:.7g} vs {:.7g}", index_text(c.worst_index), c.worst_value, c.worst_reference);
  return s;
}

nlohmann::json number(double v) {
  // JSON has no NaN/Inf: they are written as strings.
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

nlohmann::json comparison_json(const compare::TensorComparison& c) {
  nlohmann::json j = {{"name", c.name},   {"shape", c.dims},          {"pass", c.pass},
                      {"elements", c.elements}, {"max_abs", number(c.max_abs)}, {"mean_abs", number(c.mean_abs)},
                      {"max_rel", number(c.max_rel)}, {"mean_rel", number(c.mean_rel)}, {"cosine", number(c.cosine)},
                      {"over_tolerance", c.over_tolerance}, {"nonfinite", c.nonfinite},
                      {"tolerance_ratio", number(c.max_tolerance_ratio)}};
  if (!c.error.empty()) {
    j["error"] = c.error;
    j["reference_shape"] = c.ref_dims;
  }
  if (c.elements > 0)
    j["worst"] = {{"index", c.worst_index}, {"value", number(c.worst_value)}, {"reference", number(c.worst_reference)}};
  return j;
}

std::string layer_line(const LayerResult& l) {
  return fmt::format("node '{}' ({}) -> '{}' [engine: {}{}]: {}", l.layer.node, l.layer.op, l.layer.value,
                     l.engine_node,
                     l.fused_with.empty() ? "" : fmt::format(", fused with {}", fmt::join(l.fused_with, ", ")),
                     metrics_text(l.cmp));
}

}  // namespace

bool CaseResult::pass() const {
  for (const auto& o : outputs)
    if (!o.pass) return false;
  return true;
}

bool CompareReport::pass() const {
  for (const auto& c : cases)
    if (!c.pass()) return false;
  return !cases.empty();
}

void print_report(const CompareReport& r, std::ostream& os) {
  os << "model:     " << r.model << "\n";
  os << "engine:    " << r.engine << "\n";
  os << "reference: " << r.reference << "\n";
  os << "inputs:    " << r.inputs << "\n";
  os << "rule:      " << compare::describe_rule(r.tolerance) << "\n";
  for (const auto& n : r.notes) os << "note:      " << n << "\n";
  if (r.layerwise)
    os << fmt::format("layers:    {} node outputs in the model, {} computed by the engine and compared, {} fused or "
                      "folded away (not compared)\n",
                      r.layers_total, r.layers_total - r.layers_fused_away, r.layers_fused_away);
  int failed_outputs = 0, outputs = 0;
  for (const auto& c : r.cases) {
    os << fmt::format("\n{}: {}\n", c.shape.label, dims_text(c.shape.dims));
    for (const auto& o : c.outputs) {
      os << fmt::format("  {} {} {}  {}\n", o.pass ? "PASS" : "FAIL", o.name, dims_to_string(o.dims),
                        metrics_text(o));
      ++outputs;
      failed_outputs += !o.pass;
    }
    if (!r.layerwise) continue;
    size_t over = 0;
    for (const auto& l : c.layers) over += !l.cmp.pass;
    os << fmt::format("  layers: {} compared, {} over tolerance\n", c.layers.size(), over);
    if (c.first_divergence) {
      const LayerResult& l = c.layers[*c.first_divergence];
      os << "  first divergence: " << layer_line(l) << "\n";
      size_t shown = 0;
      for (size_t i = *c.first_divergence + 1; i < c.layers.size() && shown < kMaxLayerLines; ++i)
        if (!c.layers[i].cmp.pass) {
          os << "    then " << layer_line(c.layers[i]) << "\n";
          ++shown;
        }
      if (over > shown + 1) os << fmt::format("    ... {} more over tolerance (--json lists every layer)\n", over - shown - 1);
    }
  }
  os << "\n";
  if (r.pass())
    os << fmt::format("PASS: {} output(s) at {} shape(s) within the rule\n", outputs, r.cases.size());
  else
    os << fmt::format("FAIL: {} of {} output comparisons over tolerance\n", failed_outputs, outputs);
}

nlohmann::json report_json(const CompareReport& r) {
  nlohmann::json j = {{"model", r.model},
                      {"engine", r.engine},
                      {"reference", r.reference},
                      {"inputs", r.inputs},
                      {"rule",
                       {{"text", compare::describe_rule(r.tolerance)},
                        {"atol", r.tolerance.atol},
                        {"rtol", r.tolerance.rtol},
                        {"min_cosine", r.tolerance.min_cosine}}},
                      {"notes", r.notes},
                      {"pass", r.pass()}};
  if (r.layerwise) j["layers"] = {{"total", r.layers_total}, {"fused_away", r.layers_fused_away}};
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& c : r.cases) {
    nlohmann::json jc = {{"label", c.shape.label}, {"profile", c.shape.profile}, {"inputs", c.shape.dims},
                         {"pass", c.pass()}};
    jc["outputs"] = nlohmann::json::array();
    for (const auto& o : c.outputs) jc["outputs"].push_back(comparison_json(o));
    if (r.layerwise) {
      jc["layers"] = nlohmann::json::array();
      for (const auto& l : c.layers) {
        nlohmann::json jl = comparison_json(l.cmp);
        jl["node"] = l.layer.node;
        jl["op"] = l.layer.op;
        jl["engine_node"] = l.engine_node;
        jl["fused_with"] = l.fused_with;
        jc["layers"].push_back(jl);
      }
      jc["first_divergence"] = c.first_divergence ? nlohmann::json(c.layers[*c.first_divergence].layer.node) : nullptr;
    }
    cases.push_back(jc);
  }
  j["cases"] = cases;
  return j;
}

}  // namespace kiln::cli
