#include "util/tensor_stack.h"

#include <cstddef>
#include <cstring>

#include "util/error.h"

namespace kiln {

AxisSplit split_at_axis(const std::vector<int64_t>& dims, size_t axis, DType dtype) {
  AxisSplit s;
  s.outer = num_elements({dims.begin(), dims.begin() + static_cast<std::ptrdiff_t>(axis)});
  s.length = axis < dims.size() ? dims[axis] : 1;
  const size_t after = axis < dims.size() ? axis + 1 : dims.size();
  s.inner_bytes = static_cast<size_t>(num_elements({dims.begin() + static_cast<std::ptrdiff_t>(after), dims.end()})) *
                  dtype_size(dtype);
  return s;
}

Tensor take_along(const Tensor& t, size_t axis, int64_t index) {
  const AxisSplit s = split_at_axis(t.dims(), axis, t.dtype());
  std::vector<int64_t> dims = t.dims();
  dims.erase(dims.begin() + static_cast<std::ptrdiff_t>(axis));
  Tensor out(t.dtype(), dims);
  auto* dst = static_cast<std::byte*>(out.raw());
  const auto* src = static_cast<const std::byte*>(t.raw());
  for (int64_t o = 0; o < s.outer; ++o)
    std::memcpy(dst + o * s.inner_bytes, src + (o * s.length + index) * s.inner_bytes, s.inner_bytes);
  return out;
}

Result<Tensor> stack_along(const std::vector<Tensor>& parts, size_t axis, DType dtype, const std::string& what) {
  if (parts.empty()) return Tensor(dtype, {0});
  std::vector<int64_t> dims = parts[0].dims();
  for (const auto& p : parts)
    if (p.dims() != dims)
      return invalid_argument("{}: iterations produced different shapes {} and {}; they must agree to be stacked",
                              what, dims_to_string(dims), dims_to_string(p.dims()));
  if (axis > dims.size()) return invalid_argument("{}: stacking axis {} is out of range for rank {}", what, axis, dims.size() + 1);
  // Each part is one row of `inner` bytes per outer index; the stacked tensor interleaves them part by part.
  const int64_t outer = num_elements({dims.begin(), dims.begin() + static_cast<std::ptrdiff_t>(axis)});
  const size_t inner =
      static_cast<size_t>(num_elements({dims.begin() + static_cast<std::ptrdiff_t>(axis), dims.end()})) * dtype_size(dtype);
  const auto n = static_cast<int64_t>(parts.size());
  dims.insert(dims.begin() + static_cast<std::ptrdiff_t>(axis), n);
  Tensor out(dtype, dims);
  auto* dst = static_cast<std::byte*>(out.raw());
  for (int64_t k = 0; k < n; ++k)
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + (o * n + k) * inner, static_cast<const std::byte*>(parts[k].raw()) + o * inner, inner);
  return out;
}

}  // namespace kiln
