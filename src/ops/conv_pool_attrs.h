// Sliding-window attributes (kernel_shape, strides, dilations, pads, auto_pad, ceil_mode) shared by Conv,
// ConvTranspose, the pools and MaxUnpool: inference and the CPU kernels resolve them through the same code, so
// the pads a kernel uses are exactly the ones that gave the inferred output shape.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

// Largest stride, dilation or pad kiln accepts (a kernel's dilated extent may reach 2^62).
inline constexpr int64_t kMaxWindowAttr = (int64_t{1} << 31) - 1;

struct Window {
  std::vector<int64_t> kernel, strides, dilations;
  std::vector<int64_t> pad_begin, pad_end;  // resolved per axis once the input size is known (auto_pad)
  std::string auto_pad = "NOTSET";          // NOTSET, SAME_UPPER, SAME_LOWER, VALID
  bool ceil_mode = false;

  size_t rank() const { return kernel.size(); }
  int64_t effective_kernel(size_t i) const { return (kernel[i] - 1) * dilations[i] + 1; }
};

// Reads the attributes for `spatial` dims. `weight_kernel` (Conv's weight dims) stands in for a missing
// kernel_shape and must agree with a present one; pass empty for the pools, which require kernel_shape.
// Errors start with the node label.
Result<Window> read_window(const ir::Node& node, size_t spatial, const std::vector<int64_t>& weight_kernel);

// Output size of a forward window (Conv, pools) along axis i for a concrete input size; resolves SAME_* pads
// into w. Negative when the window does not fit (or the sizes overflow int64).
int64_t window_output_size(Window& w, size_t i, int64_t in);

// The same for a possibly symbolic input dim: a symbol survives when the window keeps the size
// (SAME with stride 1, or a 1-wide unpadded window with stride 1); otherwise unknown.
Dim window_output_dim(Window w, size_t i, const Dim& in);

// ConvTranspose output size along axis i: from `output_shape` (-1 when absent), else from the pads or auto_pad;
// resolves the pads (which may turn negative: the extra positions then come out as bias only).
int64_t transpose_output_size(Window& w, size_t i, int64_t in, int64_t output_padding, int64_t output_shape);

// Mixed-radix counter over `dims`, for N-D loops in kernels.
inline bool next_index(std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  for (size_t d = dims.size(); d-- > 0;) {
    if (++idx[d] < dims[d]) return true;
    idx[d] = 0;
  }
  return false;
}

}  // namespace kiln::ops
