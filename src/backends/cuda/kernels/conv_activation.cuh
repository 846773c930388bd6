// The activations FusedConv fuses (ops::ConvActivation), in f32, shared by its kernels.
#pragma once
#include "ops/fused_conv.h"

namespace kiln::cuda::convpool {

// lo, hi: the bounds of kClip (unused by the others).
__device__ __forceinline__ float activate(float v, int act, float lo, float hi) {
  switch (act) {
    case static_cast<int>(ops::ConvActivation::kRelu):
      return v > 0.f ? v : 0.f;  // as Relu: NaN -> 0
    case static_cast<int>(ops::ConvActivation::kSigmoid):
      return 1.f / (1.f + expf(-v));
    case static_cast<int>(ops::ConvActivation::kSilu):
      return v / (1.f + expf(-v));
    case static_cast<int>(ops::ConvActivation::kClip):
      return v < lo ? lo : (v > hi ? hi : v);  // as Clip: NaN stays NaN
    case static_cast<int>(ops::ConvActivation::kHardSwish):
      return v * fminf(fmaxf(v * (1.f / 6.f) + 0.5f, 0.f), 1.f);
    default:
      return v;
  }
}

}  // namespace kiln::cuda::convpool
