// kiln's own depthwise convolution (one filter per channel: group = C = M) for channels-last 2-D tensors, with
// FusedConv's epilogue (bias, residual Z, activation) fused. cuDNN's channels-last f16 depthwise kernels are
// slow, most of all for 7x7 filters (ConvNeXt), so FusedConv times this kernel as one more tactic.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::cuda {

struct DepthwiseConvShape {
  int64_t n = 0, c = 0;  // batch, channels (= groups = output channels)
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t k_h = 0, k_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1, pad_h = 0, pad_w = 0;  // pad: begin
  int act = 0;  // ops::ConvActivation
  float clip_lo = 0.f, clip_hi = 0.f;  // act == kClip
};

// The most filter taps (k_h * k_w) the kernel keeps in shared memory.
constexpr int64_t kDepthwiseMaxTaps = 169;

// Whether launch_depthwise_conv can run this shape; `why` says what it cannot take.
bool depthwise_conv_can_implement(DType dt, const DepthwiseConvShape& s, std::string* why);

// X [N, H, W, C], W [C, kh, kw] (the channels-last filter [C, kh, kw, 1]), B [C] or null, Z like Y or null,
// Y [N, OH, OW, C]: Y = act(conv(X, W) + B + Z), f32 accumulation. Z may be Y itself.
Status launch_depthwise_conv(cudaStream_t stream, DType dt, const DepthwiseConvShape& s, const void* x,
                             const void* w, const void* b, const void* z, void* y);

}  // namespace kiln::cuda
