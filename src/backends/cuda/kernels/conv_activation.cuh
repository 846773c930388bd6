// The activations FusedConv fuses (ops::ConvActivation), in f32, shared by its kernels.
#pragma once
#include "ops/fused_conv.h"

namespace kiln::cuda::convpool {

__device__ __forceinline__ float activate(float v, int act) {
  switch (act) {
    case static_cast<int>(ops::ConvActivation::kRelu):
      return v > 0.f ? v : 0.f;  // as Relu: NaN -> 0
    case static_cast<int>(ops::ConvActivation::kSigmoid):
      return 1.f / (1.f + expf(-v));
    case static_cast<int>(ops::ConvActivation::kSilu):
      return v / (1.f + expf(-v));
    default:
      return v;
  }
}

}  // namespace kiln::cuda::convpool
