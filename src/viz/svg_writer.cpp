#include "viz/svg_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "viz/colors.h"

namespace kiln::viz {

namespace {

constexpr double kLegendRow = 20;

double max_time(const LayerGraph& g) {
  double m = 0;
  for (const auto& e : g.entries) m = std::max(m, e.ms);
  return m;
}

std::string num(double v) { return fmt::format("{:.1f}", v); }

void draw_edges(std::string& out, const LayerGraph& g, const Layout& l) {
  out += "<g class=\"edges\" stroke=\"#555555\" stroke-width=\"1.2\" fill=\"none\">\n";
  for (const auto& e : g.edges) {
    const Box& a = l.boxes[e.from];
    const Box& b = l.boxes[e.to];
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" marker-end=\"url(#arrow)\"/>\n",
                       num(a.x + a.w / 2), num(a.y + a.h), num(b.x + b.w / 2), num(b.y));
  }
  out += "</g>\n<g class=\"edge-labels\" font-size=\"10\" fill=\"#333333\">\n";
  std::set<std::pair<size_t, std::string>> labelled;  // a value read by several layers is labelled once
  for (const auto& e : g.edges) {
    if (!labelled.insert({e.from, e.value}).second) continue;
    const Box& a = l.boxes[e.from];
    const Box& b = l.boxes[e.to];
    // Just below the source box, beside the arrow: the label names the tensor leaving that layer.
    const double x = a.x + a.w / 2 + (b.x + b.w / 2 - a.x - a.w / 2) * 0.25 + 4;
    out += fmt::format("<text x=\"{}\" y=\"{}\"><title>{}</title>{}</text>\n", num(x), num(a.y + a.h + 14),
                       xml_escape(e.value), xml_escape(e.label));
  }
  out += "</g>\n";
}

void draw_entry(std::string& out, const LayerEntry& e, const Box& b, double max_ms,
                const std::map<std::string, std::string>& op_fills) {
  const std::string fill = entry_fill(e, max_ms, op_fills);
  const bool dark = e.kind == EntryKind::kLayer && max_ms > 0 && e.ms >= 0 && e.ms / max_ms > 0.7;
  const char* cls = e.kind == EntryKind::kInput ? "input" : e.kind == EntryKind::kOutput ? "output" : "layer";
  out += fmt::format("<g class=\"{}\" data-name=\"{}\" data-op=\"{}\" data-fill=\"{}\">\n", cls, xml_escape(e.name),
                     xml_escape(e.op), fill);
  std::string tip = e.name + " (" + e.op + ") " + e.dtype + " " + e.shape;
  if (!e.tactic.empty()) tip += "\ntactic: " + e.tactic;
  if (e.ms >= 0) tip += fmt::format("\ntime: {:.4f} ms", e.ms);
  out += fmt::format("<title>{}</title>\n", xml_escape(tip));
  if (e.kind == EntryKind::kLayer)
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\" fill=\"{}\" stroke=\"#333333\"/>\n",
                       num(b.x), num(b.y), num(b.w), num(b.h), fill);
  else
    out += fmt::format("<ellipse cx=\"{}\" cy=\"{}\" rx=\"{}\" ry=\"{}\" fill=\"{}\" stroke=\"#333333\"/>\n",
                       num(b.x + b.w / 2), num(b.y + b.h / 2), num(b.w / 2), num(b.h / 2), fill);
  const auto lines = box_lines(e);
  const LayoutStyle s;
  const double top = b.y + (b.h - lines.size() * s.line_height) / 2 + s.line_height * 0.75;
  for (size_t i = 0; i < lines.size(); ++i)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\"{}{}>{}</text>\n", num(b.x + b.w / 2),
                       num(top + i * s.line_height), i == 0 ? " font-weight=\"bold\"" : "",
                       dark ? " fill=\"#ffffff\"" : "", xml_escape(lines[i]));
  out += "</g>\n";
}

// Below the graph: the op colours, or the time scale.
double draw_legend(std::string& out, const std::map<std::string, std::string>& ops, double y, double max_ms) {
  out += fmt::format("<g class=\"legend\" transform=\"translate(16,{})\">\n", num(y));
  double h = 0;
  if (max_ms > 0) {
    out += "<defs><linearGradient id=\"heat\">";
    for (int i = 0; i <= 4; ++i) out += fmt::format("<stop offset=\"{}%\" stop-color=\"{}\"/>", i * 25, time_color(i / 4.0));
    out += "</linearGradient></defs>\n";
    out += "<text x=\"0\" y=\"14\">time per layer:</text>\n";
    out += "<text x=\"130\" y=\"14\">0 ms</text>\n";
    out += "<rect x=\"170\" y=\"2\" width=\"200\" height=\"16\" fill=\"url(#heat)\" stroke=\"#333333\"/>\n";
    out += fmt::format("<text x=\"378\" y=\"14\">{:.4f} ms</text>\n", max_ms);
    out += fmt::format("<rect x=\"480\" y=\"2\" width=\"16\" height=\"16\" fill=\"{}\" stroke=\"#333333\"/>"
                       "<text x=\"502\" y=\"14\">no time</text>\n",
                       kNoTimeColor);
    h = kLegendRow;
  } else {
    double x = 0;
    for (const auto& [op, color] : ops) {
      const double w = 30 + op.size() * 7.2;
      if (x > 0 && x + w > 640) x = 0, h += kLegendRow;
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"16\" height=\"16\" fill=\"{}\" stroke=\"#333333\"/>"
                         "<text x=\"{}\" y=\"{}\">{}</text>\n",
                         num(x), num(h + 2), color, num(x + 22), num(h + 14), xml_escape(op));
      x += w;
    }
    h += kLegendRow;
  }
  out += "</g>\n";
  return h;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0; a name from a model file may carry them.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') out += '?';
        else out += c;
    }
  }
  return out;
}

std::map<std::string, std::string> graph_op_colors(const LayerGraph& g) {
  std::set<std::string> ops;
  for (const auto& e : g.entries)
    if (e.kind == EntryKind::kLayer) ops.insert(e.op);
  return op_colors(ops);
}

std::string entry_fill(const LayerEntry& e, double max_ms, const std::map<std::string, std::string>& op_fills) {
  if (e.kind == EntryKind::kInput) return kInputColor;
  if (e.kind == EntryKind::kOutput) return kOutputColor;
  if (max_ms > 0) return e.ms >= 0 ? time_color(e.ms / max_ms) : kNoTimeColor;
  auto it = op_fills.find(e.op);
  return it != op_fills.end() ? it->second : op_color(e.op);
}

std::string write_svg(const LayerGraph& g, const Layout& l, const std::string& title) {
  const double max_ms = max_time(g);
  const double width = std::max(l.width, 660.0);
  // A graph narrower than the legend is centred above it.
  std::string body = fmt::format("<g class=\"graph\" transform=\"translate({},0)\">\n", num((width - l.width) / 2));
  draw_edges(body, g, l);
  const auto op_fills = graph_op_colors(g);
  for (size_t i = 0; i < g.entries.size(); ++i) draw_entry(body, g.entries[i], l.boxes[i], max_ms, op_fills);
  body += "</g>\n";
  const double legend_h = draw_legend(body, op_fills, l.height, max_ms);
  const double height = l.height + legend_h + 16;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"DejaVu Sans Mono, monospace\" font-size=\"12\">\n<title>{2}</title>\n"
      "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
      "orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555555\"/></marker></defs>\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
      num(width), num(height), xml_escape(title));
  out += body;
  out += "</svg>\n";
  return out;
}

}  // namespace kiln::viz
