// The builder's convolution layout choice for CUDA f16/bf16 engines (BuildConfig::conv_layout).
#pragma once
#include "kiln/builder.h"

namespace kiln {

// Whether 2-D convolutions go channels-last: kNCHW as asked, NHWC otherwise (kAuto included, at every batch:
// see ConvLayoutChoice for the measurement).
bool use_channels_last(ConvLayoutChoice choice);

}  // namespace kiln
