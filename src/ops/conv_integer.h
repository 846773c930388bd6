// Convolution geometry shared by ConvInteger and QLinearConv inference and their CPU kernels.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ops {

// Per spatial dim; -1 marks what is unknown at build time.
struct QuantConvGeometry {
  std::vector<int64_t> kernel, strides, dilations, pad_begin, pad_end, out;
  int64_t group = 1;
};

// Resolves kernel_shape, strides, dilations, pads and auto_pad for spatial input dims `in` and weight spatial
// dims `w` (either may hold -1). Returns an empty string, or what is wrong.
std::string quant_conv_geometry(const ir::Node& node, const std::vector<int64_t>& in, const std::vector<int64_t>& w,
                                QuantConvGeometry& g);

}  // namespace kiln::ops
