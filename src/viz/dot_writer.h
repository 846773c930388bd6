// The layer graph in graphviz's DOT language, for people who lay it out with their own tools: boxes for
// layers (filled as in kiln's SVG), ellipses for inputs and outputs, edges labelled with tensor shapes.
#pragma once
#include <string>

#include "viz/layer_graph.h"

namespace kiln::viz {

std::string write_dot(const LayerGraph& g, const std::string& title);

}  // namespace kiln::viz
