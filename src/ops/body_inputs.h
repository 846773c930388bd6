// The types an If/Loop/Scan body's inputs take from its node: exporters often leave a body's inputs untyped, and
// tools that walk bodies (placement prediction, kernel coverage) need them to type the body's values.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ops {

// For each input of `body` (an attribute graph of `node`) that declares no dtype: its type from the node's inputs
// (`inputs`, null for absent ones): Loop's iteration number (i64 scalar), condition (bool scalar) and carried
// values; Scan's states and, for scan inputs, the element type with the scanned axis unknown.
std::map<std::string, ir::ValueInfo> body_input_types(const ir::Node& node, const ir::Graph& body,
                                                      const std::vector<const ir::ValueInfo*>& inputs);

}  // namespace kiln::ops
