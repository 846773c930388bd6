// Identity and inference-time no-ops (Dropout returns its input; mask all true).
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_dropout(InferContext& ctx) {
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
  if (ctx.has_output(1)) ctx.set_output(1, DType::kBool, ctx.input_shape(0));
  return Status();
}

}  // namespace

void register_identity(OpRegistry& r) {
  r.add({"Identity", 1, 1, 1, 1, infer_same_as_input0});
  r.add({"Dropout", 1, 3, 1, 2, infer_dropout});
}

}  // namespace kiln::ops
