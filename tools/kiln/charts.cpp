#include "charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace kiln::cli {

namespace {

constexpr double kCharWidth = 6.6;  // of the 11 px sans-serif labels, wide enough for most fonts
constexpr size_t kMaxLabelChars = 48;
constexpr double kRowHeight = 20, kBarHeight = 14, kValueWidth = 260;

std::string num(double v) { return fmt::format("{:.1f}", v); }

std::string value_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.4g}", v);
}

// A label cut to fit its column; the whole one stays in the bar's tooltip.
std::string fit(const std::string& s) {
  if (s.size() <= kMaxLabelChars) return s;
  size_t cut = kMaxLabelChars - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return s.substr(0, cut) + "\xE2\x80\xA6";
}

}  // namespace

Histogram histogram_of(const std::vector<double>& values, int bins) {
  Histogram h;
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  if (v.empty() || bins < 1) return h;
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  h.lo = *lo;
  h.hi = *hi;
  if (!(h.hi > h.lo)) {
    h.counts = {static_cast<int64_t>(v.size())};
    return h;
  }
  h.counts.assign(static_cast<size_t>(bins), 0);
  const double width = (h.hi - h.lo) / bins;
  for (double x : v) {
    auto i = static_cast<size_t>((x - h.lo) / width);
    ++h.counts[std::min(i, h.counts.size() - 1)];
  }
  return h;
}

std::string histogram_svg(const Histogram& h, const std::string& fill, const std::vector<Marker>& markers,
                          const std::string& unit) {
  const double width = 860, left = 56, right = 20;
  const double top = 16 + 12.0 * static_cast<double>(markers.size()), plot_h = 150;
  const double height = top + plot_h + 36, plot_w = width - left - right;
  std::string out = fmt::format(
      "<svg class=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      num(width), num(height));
  if (h.counts.empty()) return out + "<text x=\"10\" y=\"20\">no values</text>\n</svg>\n";
  const int64_t peak = *std::max_element(h.counts.begin(), h.counts.end());
  // With all values equal the range is empty: one bar over a range a tenth of the value wide.
  const double lo = h.hi > h.lo ? h.lo : h.lo * 0.95, hi = h.hi > h.lo ? h.hi : h.lo * 1.05 + 1e-12;
  auto x_of = [&](double v) { return left + (v - lo) / (hi - lo) * plot_w; };
  const double bin_w = plot_w / static_cast<double>(h.counts.size());
  out += fmt::format("<g class=\"bars\" fill=\"{}\">\n", fill);
  for (size_t i = 0; i < h.counts.size(); ++i) {
    if (h.counts[i] == 0) continue;
    const double bh = std::max(1.0, plot_h * static_cast<double>(h.counts[i]) / static_cast<double>(peak));
    const double x = h.hi > h.lo ? left + bin_w * static_cast<double>(i) : x_of(h.lo) - 4;
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>\n", num(x),
                       num(top + plot_h - bh), num(h.hi > h.lo ? std::max(1.0, bin_w - 1) : 8.0), num(bh),
                       h.counts[i]);
  }
  out += "</g>\n";
  out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333333\"/>\n", num(left),
                     num(top + plot_h), num(left + plot_w), num(top + plot_h));
  const char* anchors[] = {"start", "middle", "end"};  // the end labels stay inside the picture
  const double ticks[] = {lo, (lo + hi) / 2, hi};
  for (int i = 0; i < 3; ++i)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"{}\">{} {}</text>\n", num(x_of(ticks[i])),
                       num(top + plot_h + 16), anchors[i], value_text(ticks[i]), html_escape(unit));
  out += fmt::format("<text x=\"4\" y=\"{}\">{}</text>\n", num(top + 10), peak);
  for (size_t i = 0; i < markers.size(); ++i) {
    const double x = std::clamp(x_of(markers[i].value), left, left + plot_w);
    const double label_y = 12 + 12.0 * static_cast<double>(i);
    // Near the right edge the label goes left of its line, so it is not cut off.
    const bool flip = x > left + plot_w - 90;
    out += fmt::format(
        "<line class=\"marker\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#222222\" "
        "stroke-dasharray=\"4 3\"/>\n<text x=\"{3}\" y=\"{4}\"{5}>{6} {7}</text>\n",
        num(x), num(label_y + 2), num(top + plot_h), num(flip ? x - 3 : x + 3), num(label_y),
        flip ? " text-anchor=\"end\"" : "", html_escape(markers[i].label), value_text(markers[i].value));
  }
  return out + "</svg>\n";
}

std::string bar_chart_svg(const std::vector<Bar>& bars, const BarChartStyle& style) {
  size_t label_chars = 4;
  for (const auto& b : bars) label_chars = std::max(label_chars, std::min(b.label.size(), kMaxLabelChars));
  // Bars start on a whole pixel, so a 3 px stub renders as solid colour, not two blended columns.
  const double label_w = std::round(static_cast<double>(label_chars) * kCharWidth + 10);
  const double bar_x = label_w, bar_max = std::max(80.0, style.width - label_w - kValueWidth);
  const double top = style.reference ? 18 : 4;
  const double height = top + kRowHeight * static_cast<double>(bars.size()) + 4;

  // The value at the end of the scale: the largest finite bar, or the reference line if that is larger.
  double scale_max = style.reference.value_or(0);
  for (const auto& b : bars)
    if (std::isfinite(b.value)) scale_max = std::max(scale_max, b.value);
  // On a log scale, room past the reference line, so a bar far over it (or infinite) is seen to be.
  if (style.log_scale && style.reference) scale_max = std::max(scale_max, *style.reference * 100);
  auto length = [&](double v) {
    if (std::isnan(v) || v <= 0) return 0.0;
    if (std::isinf(v)) return bar_max;
    if (style.log_scale) {
      const double span = std::log10(std::max(scale_max, style.log_floor * 10) / style.log_floor);
      return v <= style.log_floor ? 0.0 : bar_max * std::log10(v / style.log_floor) / span;
    }
    return scale_max > 0 ? bar_max * v / scale_max : 0.0;
  };

  std::string out = fmt::format(
      "<svg class=\"bars\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      num(style.width), num(height));
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double y = top + kRowHeight * static_cast<double>(i);
    // Every number gets a stub, so a zero error still shows its colour; NaN gets none.
    const double len = std::isnan(b.value) ? 0.0 : std::max(length(b.value), 3.0);
    out += fmt::format("<g class=\"bar\" data-label=\"{}\"><title>{}: {}{}</title>\n", html_escape(b.label),
                       html_escape(b.label), value_text(b.value), html_escape(style.unit));
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", num(label_w - 6),
                       num(y + kBarHeight - 3), html_escape(fit(b.label)));
    if (len > 0)
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"{}/>\n", num(bar_x),
                         num(y + 1), num(len), num(kBarHeight), b.fill,
                         b.outline ? " stroke=\"#111111\" stroke-width=\"2\"" : "");
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}{}{}</text>\n</g>\n", num(bar_x + len + 5),
                       num(y + kBarHeight - 3), value_text(b.value), html_escape(style.unit),
                       b.note.empty() ? "" : "  " + html_escape(b.note));
  }
  if (style.reference) {
    const double x = bar_x + length(*style.reference);
    out += fmt::format(
        "<line class=\"reference\" x1=\"{0}\" y1=\"12\" x2=\"{0}\" y2=\"{1}\" stroke=\"#222222\" "
        "stroke-dasharray=\"4 3\"/>\n<text x=\"{2}\" y=\"10\">{3}</text>\n",
        num(x), num(height), num(x + 3), html_escape(style.reference_label));
  }
  return out + "</svg>\n";
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string html_page(const std::string& title, const std::string& body) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n"
      "body {{ font-family: sans-serif; font-size: 13px; color: #1a1a1a; background: #ffffff; margin: 16px 24px; "
      "max-width: 900px; }}\n"
      "h1 {{ font-size: 18px; }} h2 {{ font-size: 15px; margin-top: 22px; }}\n"
      "table {{ border-collapse: collapse; margin: 6px 0; }}\n"
      "th, td {{ border-bottom: 1px solid #e4e4e4; padding: 2px 10px 2px 0; text-align: left; max-width: 720px; "
      "overflow-wrap: anywhere; vertical-align: top; }}\n"
      "td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}\n"
      ".warning {{ border-left: 4px solid #c98a00; padding: 4px 8px; margin: 6px 0; }}\n"
      ".fail {{ color: #b00020; font-weight: bold; }} .pass {{ color: #1b6e2a; font-weight: bold; }}\n"
      "pre {{ font-size: 11px; border: 1px solid #e4e4e4; padding: 6px; overflow-x: auto; }}\n"
      ".meta {{ color: #555555; }}\n"
      "</style>\n</head>\n<body>\n{}</body>\n</html>\n",
      html_escape(title), body);
}

std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       size_t numeric_from) {
  std::string out = "<table>\n<tr>";
  for (const auto& h : header) out += "<th>" + html_escape(h) + "</th>";
  out += "</tr>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (size_t i = 0; i < row.size(); ++i)
      out += (i >= numeric_from ? "<td class=\"num\">" : "<td>") + html_escape(row[i]) + "</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

}  // namespace kiln::cli
