// Which axes a Reduce* node reduces: shared by inference and the kernels so both read the node the same way.
#pragma once
#include <vector>

#include "ir/graph.h"

namespace kiln::ops {

struct ReduceSpec {
  bool axes_known = true;  // false when the axes input is not a constant (build time only)
  bool noop = false;       // empty axes with noop_with_empty_axes=1: the output is the input
  bool keepdims = true;
  std::vector<bool> reduced;  // per input axis
};

// axes: input 1's value when known (null when absent or not yet known); axes_given: input 1 is present.
// Before opset 13 (ReduceSum) / 18 (the others) the axes come from the attribute instead.
Result<ReduceSpec> reduce_spec(const ir::Node& node, int64_t opset, int64_t rank, const Tensor* axes,
                               bool axes_given);

}  // namespace kiln::ops
