// A layered drawing of a LayerGraph without graphviz: each entry's row is its longest path from an input
// (topological depth), rows are ordered by the mean position of their predecessors (one downward sweep, which
// untangles the chains and branches of inference graphs well enough), and boxes are sized from their text.
// Deterministic: the same graph gives the same coordinates.
#pragma once
#include <vector>

#include "viz/layer_graph.h"

namespace kiln::viz {

struct Box {
  double x = 0, y = 0, w = 0, h = 0;  // top-left corner and size, in pixels
  int row = 0;
};

struct Layout {
  std::vector<Box> boxes;  // one per LayerGraph entry
  double width = 0, height = 0;
  int rows = 0;
};

struct LayoutStyle {
  double char_width = 7.2;  // of the 12px monospace font the SVG uses
  double line_height = 16;
  double pad = 8;           // inside a box
  double gap_x = 24, gap_y = 44, margin = 16;
  double min_width = 96;
};

// The text lines drawn in an entry's box (name; op and dtype; shape; tactic when known).
std::vector<std::string> box_lines(const LayerEntry& e);

Layout layout_graph(const LayerGraph& g, const LayoutStyle& style = {});

}  // namespace kiln::viz
