#include "viz/graph_layout.h"

#include <algorithm>
#include <numeric>

namespace kiln::viz {

std::vector<std::string> box_lines(const LayerEntry& e) {
  if (e.kind != EntryKind::kLayer) return {e.name, e.dtype + " " + e.shape};
  std::vector<std::string> lines{e.name, e.op + " · " + e.dtype, e.shape};
  if (!e.tactic.empty()) lines.push_back(e.tactic);
  return lines;
}

namespace {

// Characters as a monospace font lays them out: UTF-8 continuation bytes take no width.
size_t text_columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Longest path from a source: entries come in graph order, so every edge goes forward and one pass suffices.
// Outputs sit one row below their producer, never beside the layers that read nothing else.
std::vector<int> depths(const LayerGraph& g) {
  std::vector<int> d(g.entries.size(), 0);
  std::vector<std::vector<size_t>> preds(g.entries.size());
  for (const auto& e : g.edges) preds[e.to].push_back(e.from);
  for (size_t i = 0; i < g.entries.size(); ++i)
    for (size_t p : preds[i]) d[i] = std::max(d[i], d[p] + 1);
  return d;
}

}  // namespace

Layout layout_graph(const LayerGraph& g, const LayoutStyle& s) {
  Layout out;
  const size_t n = g.entries.size();
  out.boxes.resize(n);
  if (n == 0) return out;
  const std::vector<int> depth = depths(g);
  out.rows = *std::max_element(depth.begin(), depth.end()) + 1;
  std::vector<std::vector<size_t>> preds(n);
  for (const auto& e : g.edges) preds[e.to].push_back(e.from);

  for (size_t i = 0; i < n; ++i) {
    size_t cols = 0;
    const auto lines = box_lines(g.entries[i]);
    for (const auto& l : lines) cols = std::max(cols, text_columns(l));
    out.boxes[i].w = std::max(s.min_width, cols * s.char_width + 2 * s.pad);
    out.boxes[i].h = lines.size() * s.line_height + 2 * s.pad;
    out.boxes[i].row = depth[i];
  }
  std::vector<std::vector<size_t>> rows(out.rows);
  for (size_t i = 0; i < n; ++i) rows[depth[i]].push_back(i);

  // Place row by row; a row's order follows the mean centre of each entry's predecessors.
  std::vector<double> row_width(out.rows, 0), row_height(out.rows, 0);
  std::vector<double> centre(n, 0);
  for (int r = 0; r < out.rows; ++r) {
    auto& row = rows[r];
    std::vector<double> key(n, 0);
    for (size_t i : row) {
      if (preds[i].empty()) {
        key[i] = static_cast<double>(i);  // sources keep graph order
        continue;
      }
      double sum = 0;
      for (size_t p : preds[i]) sum += centre[p];
      key[i] = sum / preds[i].size();
    }
    std::stable_sort(row.begin(), row.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
    double x = 0;
    for (size_t i : row) {
      out.boxes[i].x = x;
      x += out.boxes[i].w + s.gap_x;
      centre[i] = out.boxes[i].x + out.boxes[i].w / 2;
      row_height[r] = std::max(row_height[r], out.boxes[i].h);
    }
    row_width[r] = x - s.gap_x;
    // Centre the row under its predecessors' mean, so a chain stays a straight column.
    double want = 0;
    size_t counted = 0;
    for (size_t i : row)
      for (size_t p : preds[i]) want += centre[p], ++counted;
    const double shift = counted ? want / counted - row_width[r] / 2 : 0;
    for (size_t i : row) {
      out.boxes[i].x += shift;
      centre[i] += shift;
    }
  }
  // Translate so the leftmost box sits at the margin, then stack the rows.
  double min_x = 0, max_x = 0;
  bool first = true;
  for (const auto& b : out.boxes) {
    min_x = first ? b.x : std::min(min_x, b.x);
    max_x = first ? b.x + b.w : std::max(max_x, b.x + b.w);
    first = false;
  }
  std::vector<double> row_y(out.rows, s.margin);
  for (int r = 1; r < out.rows; ++r) row_y[r] = row_y[r - 1] + row_height[r - 1] + s.gap_y;
  for (auto& b : out.boxes) {
    b.x += s.margin - min_x;
    b.y = row_y[b.row] + (row_height[b.row] - b.h) / 2;
  }
  out.width = max_x - min_x + 2 * s.margin;
  out.height = row_y.back() + row_height.back() + s.margin;
  return out;
}

}  // namespace kiln::viz
