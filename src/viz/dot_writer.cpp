#include "viz/dot_writer.h"

#include <fmt/format.h>

#include <algorithm>

#include "viz/graph_layout.h"
#include "viz/svg_writer.h"

namespace kiln::viz {

namespace {

// A DOT double-quoted string: quotes and backslashes escaped, lines joined with DOT's centred line break.
std::string quoted(const std::vector<std::string>& lines) {
  std::string out = "\"";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\\n";
    for (char c : lines[i]) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::string write_dot(const LayerGraph& g, const std::string& title) {
  double max_ms = 0;
  for (const auto& e : g.entries) max_ms = std::max(max_ms, e.ms);
  const auto op_fills = graph_op_colors(g);
  std::string out = fmt::format("digraph {} {{\n", quoted({title}));
  out += "  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10, style=filled];\n"
         "  edge [fontname=\"monospace\", fontsize=9];\n";
  for (size_t i = 0; i < g.entries.size(); ++i) {
    const LayerEntry& e = g.entries[i];
    std::vector<std::string> lines = box_lines(e);
    if (e.ms >= 0) lines.push_back(fmt::format("{:.4f} ms", e.ms));
    out += fmt::format("  n{} [label={}, shape={}, fillcolor=\"{}\"];\n", i, quoted(lines),
                       e.kind == EntryKind::kLayer ? "box" : "ellipse", entry_fill(e, max_ms, op_fills));
  }
  for (const auto& e : g.edges) out += fmt::format("  n{} -> n{} [label={}];\n", e.from, e.to, quoted({e.label}));
  out += "}\n";
  return out;
}

}  // namespace kiln::viz
