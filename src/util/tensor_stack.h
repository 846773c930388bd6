// Taking one element along an axis and stacking equally shaped tensors along a new axis: what Loop and Scan do
// with their scan inputs and outputs, on host tensors. The CUDA executor does the same on the device with the
// same geometry (AxisSplit).
#pragma once
#include <string>
#include <vector>

#include "kiln/shape.h"
#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln {

// dims split at `axis`: the rows before it, its length, and the bytes of one element of it (everything after).
struct AxisSplit {
  int64_t outer = 1, length = 1;
  size_t inner_bytes = 0;
};
AxisSplit split_at_axis(const std::vector<int64_t>& dims, size_t axis, DType dtype);

// Element [index] of `t` along `axis`, with that axis removed.
Tensor take_along(const Tensor& t, size_t axis, int64_t index);

// Stacks `parts` (equal shapes) along a new `axis`; no parts give a tensor of dims {0}. `what` names the node in
// the error when the shapes differ.
Result<Tensor> stack_along(const std::vector<Tensor>& parts, size_t axis, DType dtype, const std::string& what);

}  // namespace kiln
