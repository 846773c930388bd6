// Shared inference for NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: input [N, C, d1...],
// target [N, d1...] of class indices, optional weight [C], reduction none/sum/mean.
#pragma once
#include "ops/op.h"

namespace kiln::ops {

Status infer_class_loss(InferContext& ctx, const char* input_name, const char* target_name);

}  // namespace kiln::ops
