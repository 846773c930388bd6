// The types an If/Loop/Scan body's inputs take from its node: exporters often leave a body's inputs untyped, and
// tools that walk bodies (placement prediction, kernel coverage) need them to type the body's values.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::ops {

// For each input of `body` (an attribute graph of `node`) that declares no dtype: its type from the node's inputs
// (`inputs`, null for absent ones): Loop's iteration number (i64 scalar), condition (bool scalar) and carried
// values; Scan's states and, for scan inputs, the element type with the scanned axis unknown.
std::map<std::string, ir::ValueInfo> body_input_types(const ir::Node& node, const ir::Graph& body,
                                                      const std::vector<const ir::ValueInfo*>& inputs);

// A node's output types and shapes as inference gives them from what `info` and `constant` say of its inputs by
// name (either may answer null: unknown); nullopt when the op's rules reject them. For tools that type a body's
// values as they walk it, where no infer_shapes pass ran.
std::optional<std::vector<ir::ValueInfo>> infer_outputs(
    const ir::Node& node, int64_t opset, const std::function<const ir::ValueInfo*(const std::string&)>& info,
    const std::function<const Tensor*(const std::string&)>& constant);

}  // namespace kiln::ops
