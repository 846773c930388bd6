#pragma once
#include "ir/graph.h"

namespace kiln::ops {
// The tensor a Constant node produces, from whichever value* attribute it carries.
Result<Tensor> constant_node_value(const ir::Node& node);
}  // namespace kiln::ops
