#include "backends/cuda/shape_limits.h"

#include <map>

namespace kiln::cuda {

ShapeLimitFn shape_limit_of(std::string_view op_type) {
  // Every op whose CUDA kernel has a limit on input dims that its dtype check does not cover.
  static const std::map<std::string_view, ShapeLimitFn> kLimits = {
      {"FusedAttention", attention_shape_limit}, {"Conv", conv_spatial_limit},
      {"FusedConv", conv_spatial_limit},         {"MaxPool", conv_spatial_limit},
      {"AveragePool", conv_spatial_limit},       {"Resize", resize_shape_limit},
      {"Upsample", resize_shape_limit},
  };
  auto it = kLimits.find(op_type);
  return it == kLimits.end() ? nullptr : it->second;
}

}  // namespace kiln::cuda
