// The layer graph as a standalone SVG (no scripts, no external fonts or links), drawn by kiln itself so a
// picture needs no graphviz. Layers are boxes filled by op, or by time when the graph carries times (with a
// legend for either); inputs and outputs are ellipses; edges are arrows labelled with the tensor's shape.
#pragma once
#include <map>
#include <string>

#include "viz/graph_layout.h"
#include "viz/layer_graph.h"

namespace kiln::viz {

// The fill of an entry's shape: by kind, by time (when max_ms > 0) or by op (from op_colors of the graph).
std::string entry_fill(const LayerEntry& e, double max_ms, const std::map<std::string, std::string>& op_fills);
std::map<std::string, std::string> graph_op_colors(const LayerGraph& g);
std::string write_svg(const LayerGraph& g, const Layout& layout, const std::string& title);
// XML text and attribute escaping (& < > " ').
std::string xml_escape(const std::string& s);

}  // namespace kiln::viz
