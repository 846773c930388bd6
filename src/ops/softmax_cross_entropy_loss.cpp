// SoftmaxCrossEntropyLoss: NegativeLogLikelihoodLoss of LogSoftmax over axis 1, with optional log_prob
// output.
#include "ops/loss.h"
#include "ops/op_table.h"

namespace kiln::ops {

namespace {

Status infer_sce(InferContext& ctx) {
  return infer_class_loss(ctx, "scores", "labels");
}

}  // namespace

void register_softmax_cross_entropy_loss(OpRegistry& r) {
  r.add({"SoftmaxCrossEntropyLoss", 2, 3, 1, 2, infer_sce});
}

}  // namespace kiln::ops
