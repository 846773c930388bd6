// FusedConv (kiln domain, created by passes/fuse_conv_act): Y = act(Conv(X, W) + B + Z).
// Inputs: X, W, optional B [M], optional Z (the residual, Y's shape). Attributes: Conv's own (kernel_shape,
// strides, dilations, pads, auto_pad, group) plus
//   activation: "none" (default), "relu", "sigmoid", "silu" (x * sigmoid(x)), "clip" (min(max(x, clip_min),
//               clip_max): ReLU6 as exporters write it, with float attributes clip_min / clip_max, absent = no
//               bound), "hardswish" (x * max(0, min(1, x / 6 + 1/2)), ONNX HardSwish);
//   layout:     "NCHW" (default: X [N, C, D...], W [M, C/group, k...], Y/Z [N, M, out...]) or
//               "NHWC" (channels last: X [N, D..., C], W [M, k..., C/group], Y/Z [N, out..., M]), so a later
//               pass can keep activations channels-last between convolutions (cuDNN's f16 tensor-core kernels
//               prefer it).
// Inference, the CPU reference and the CUDA kernel all resolve the window through the equivalent Conv node,
// so the three agree with Conv on every geometry.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

enum class ConvActivation { kNone, kRelu, kSigmoid, kSilu, kClip, kHardSwish };
enum class ConvLayout { kNCHW, kNHWC };

inline constexpr size_t kFusedConvX = 0, kFusedConvW = 1, kFusedConvB = 2, kFusedConvZ = 3;

// Parse the attributes; errors start with the node label and list the accepted values.
Result<ConvActivation> read_conv_activation(const ir::Node& node);
// The bounds of activation "clip" (-inf / +inf where absent); an error when clip_min > clip_max.
struct ConvClip {
  float lo, hi;
};
Result<ConvClip> read_conv_clip(const ir::Node& node);
Result<ConvLayout> read_conv_layout(const ir::Node& node);
const char* conv_activation_name(ConvActivation a);

// The plain Conv node FusedConv extends: same name, Conv's attributes, inputs X, W (and B when present).
ir::Node conv_node_of(const ir::Node& fused);

// Axis permutations between channels-last and channels-first for a tensor of `rank` dims (>= 3):
// to_channels_first = [0, r-1, 1, ..., r-2]; to_channels_last = [0, 2, ..., r-1, 1]. Output axis i reads
// input axis perm[i]. W in NHWC ([M, k..., C/g]) converts to Conv's [M, C/g, k...] with the same permutation
// as X.
std::vector<size_t> to_channels_first(size_t rank);
std::vector<size_t> to_channels_last(size_t rank);

}  // namespace kiln::ops
