// kiln compare --html (see compare_html.h).
#include "compare_html.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "charts.h"

namespace kiln::cli {

namespace {

using nlohmann::json;

// A big model has thousands of layers; the page draws this many, starting a little before the first divergence.
constexpr size_t kMaxLayerBars = 300;
constexpr size_t kLayersBeforeDivergence = 40;

// The report writes NaN and Inf as strings (JSON has neither).
double number(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::string g(const json& v) { return fmt::format("{:.4g}", number(v)); }

std::string dims_text(const json& dims) {
  std::string s;
  for (const auto& d : dims) s += (s.empty() ? "" : ",") + std::to_string(d.get<int64_t>());
  return "[" + s + "]";
}

std::string inputs_text(const json& inputs) {
  std::string s;
  for (const auto& [name, dims] : inputs.items()) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", name, dims_text(dims));
  return s;
}

std::string verdict(bool pass) {
  return pass ? "<span class=\"pass\">PASS</span>" : "<span class=\"fail\">FAIL</span>";
}

BarChartStyle ratio_style() {
  BarChartStyle style;
  style.log_scale = true;
  style.log_floor = 1e-4;
  style.reference = 1.0;
  style.reference_label = "tolerance";
  style.unit = "\xC3\x97 tol";
  return style;
}

Bar ratio_bar(const json& c, std::string label, bool first_divergence) {
  const bool pass = c["pass"].get<bool>();
  std::string note = pass ? "" : "over tolerance";
  if (c.contains("error")) note = c["error"].get<std::string>();
  if (first_divergence) note = "first divergence" + (note.empty() ? "" : ", " + note);
  return {std::move(label), number(c["tolerance_ratio"]), pass ? kWithinToleranceFill : kOverToleranceFill, note,
          first_divergence};
}

std::string outputs_table(const json& outputs) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& o : outputs) {
    std::string worst = "-";
    if (o.contains("worst"))
      worst = fmt::format("{} {} vs {}", dims_text(o["worst"]["index"]), g(o["worst"]["value"]),
                          g(o["worst"]["reference"]));
    rows.push_back({o["name"].get<std::string>(), o["pass"].get<bool>() ? "pass" : "FAIL", dims_text(o["shape"]),
                    g(o["max_abs"]), g(o["mean_abs"]), g(o["max_rel"]), g(o["cosine"]),
                    fmt::format("{} of {}", o["over_tolerance"].get<int64_t>(), o["elements"].get<int64_t>()),
                    o.contains("error") ? o["error"].get<std::string>() : worst});
  }
  return html_table(
      {"output", "", "shape", "max abs", "mean abs", "max rel", "cosine", "over tolerance", "worst element"}, rows,
      3);
}

std::string layers_section(const json& c) {
  const json& layers = c["layers"];
  const std::string first = c["first_divergence"].is_null() ? "" : c["first_divergence"].get<std::string>();
  size_t over = 0, first_index = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    over += !layers[i]["pass"].get<bool>();
    if (!first.empty() && layers[i]["node"] == first && first_index == 0) first_index = i;
  }
  std::string out = fmt::format("<h3>Layers: {} compared, {} over tolerance{}</h3>\n", layers.size(), over,
                                first.empty() ? "" : ", first divergence at node '" + html_escape(first) + "'");
  size_t begin = 0;
  if (layers.size() > kMaxLayerBars && !first.empty())
    begin = std::min(first_index > kLayersBeforeDivergence ? first_index - kLayersBeforeDivergence : 0,
                     layers.size() - kMaxLayerBars);
  const size_t end = std::min(layers.size(), begin + kMaxLayerBars);
  if (begin > 0 || end < layers.size())
    out += fmt::format("<p>Layers {} to {} of {} in the model's order (--json lists every one).</p>\n", begin + 1, end,
                       layers.size());
  std::vector<Bar> bars;
  for (size_t i = begin; i < end; ++i) {
    const json& l = layers[i];
    bars.push_back(ratio_bar(l, fmt::format("{} ({})", l["node"].get<std::string>(), l["op"].get<std::string>()),
                             !first.empty() && i == first_index));
  }
  return out + "<div class=\"layers\">\n" + bar_chart_svg(bars, ratio_style()) + "</div>\n";
}

std::string case_section(const json& c) {
  std::string out = fmt::format("<h2>{}: {} {}</h2>\n", html_escape(c["label"].get<std::string>()),
                                html_escape(inputs_text(c["inputs"])), verdict(c["pass"].get<bool>()));
  out += outputs_table(c["outputs"]);
  std::vector<Bar> bars;
  for (const auto& o : c["outputs"]) bars.push_back(ratio_bar(o, o["name"].get<std::string>(), false));
  out += "<div class=\"outputs\">\n" + bar_chart_svg(bars, ratio_style()) + "</div>\n";
  if (c.contains("layers")) out += layers_section(c);
  return out;
}

}  // namespace

std::string compare_html(const json& report, const std::vector<std::string>& bisect_lines) {
  const json& rule = report["rule"];
  std::string body = fmt::format("<h1>kiln compare: {} {}</h1>\n", html_escape(report["model"].get<std::string>()),
                                 verdict(report["pass"].get<bool>()));
  std::vector<std::vector<std::string>> what = {{"engine", report["engine"].get<std::string>()},
                                                {"reference", report["reference"].get<std::string>()},
                                                {"inputs", report["inputs"].get<std::string>()},
                                                {"rule", rule["text"].get<std::string>()}};
  for (const auto& n : report["notes"]) what.push_back({"note", n.get<std::string>()});
  if (report.contains("layers"))
    what.push_back({"layers", fmt::format("{} node outputs in the model, {} fused or folded away (not compared)",
                                          report["layers"]["total"].get<int>(),
                                          report["layers"]["fused_away"].get<int>())});
  body += html_table({"", ""}, what, 9);
  body += "<p class=\"meta\">Bars: the largest error of any element over its tolerance, |engine &minus; "
          "reference| / (atol + rtol &middot; |reference|), on a log scale; at 1 (the dashed line) an element just "
          "passes. Green: within the rule; red: over it.</p>\n";
  for (const auto& c : report["cases"]) body += case_section(c);
  if (!bisect_lines.empty()) {
    std::string text;
    for (const auto& l : bisect_lines) text += l + "\n";
    body += "<h2>Precision bisect</h2>\n<pre>" + html_escape(text) + "</pre>\n";
  }
  return html_page("kiln compare: " + report["model"].get<std::string>(), body);
}

}  // namespace kiln::cli
