// Softmax, LogSoftmax, Hardmax. Before opset 13 the input is viewed as 2-D [prod(dims[:axis]),
// prod(dims[axis:])] (default axis 1); from 13 they work along one axis (default -1).
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_softmax(InferContext& ctx) {
  if (!is_float(ctx.input_dtype(0)))
    return ctx.error("needs a float input, got {} (cast it first)", dtype_name(ctx.input_dtype(0)));
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank()) {
    const int64_t rank = static_cast<int64_t>(in.rank());
    if (rank == 0) return ctx.error("needs an input of rank >= 1, got a scalar");
    KILN_RETURN_IF_ERROR(
        normalize_axis(ctx, ctx.node().attr_int("axis", ctx.opset() < 13 ? 1 : -1), rank).status());
  }
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_softmax(OpRegistry& r) {
  for (auto name : {"Softmax", "LogSoftmax", "Hardmax"}) r.add({name, 1, 1, 1, 1, infer_softmax});
}

}  // namespace kiln::ops
