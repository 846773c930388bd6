// The builder's convolution layout choice for CUDA f16/bf16 engines (BuildConfig::conv_layout).
#pragma once
#include <vector>

#include "ir/graph.h"
#include "kiln/builder.h"

namespace kiln {

// True when the engine only ever runs at batch 1 as far as the build can tell: with profiles, every profile's
// opt shape has dim 0 == 1 for every input it names, and the inputs it does not name have a static dim 0 of 1;
// without profiles, every input of rank >= 1 has a static dim 0 of 1. Inputs of rank 0 do not count.
bool batch_one_engine(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles);

// Whether 2-D convolutions go channels-last: kNHWC / kNCHW as asked; kAuto: NHWC unless batch_one_engine.
bool use_channels_last(ConvLayoutChoice choice, const ir::Graph& g, const std::vector<OptimizationProfile>& profiles);

}  // namespace kiln
