// RMSNormalization (opset 23): X / sqrt(mean(X^2 over dims[axis:]) + epsilon) * scale.
#include "ops/normalization_util.h"
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_rms_norm(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input X, got {}", dtype_name(dt));
  const int64_t stash = ctx.node().attr_int("stash_type", 1);
  auto stash_dt = dtype_from_onnx(static_cast<int32_t>(stash));
  if (!stash_dt || !is_float(*stash_dt)) return ctx.unsupported("stash_type {} is not supported", stash);
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank()) {
    const int64_t rank = static_cast<int64_t>(in.rank());
    if (rank == 0) return ctx.error("needs an input X of rank >= 1, got a scalar");
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", -1), rank));
    std::vector<Dim> normalized(in.dims().begin() + axis, in.dims().end());
    KILN_RETURN_IF_ERROR(check_broadcasts_to(ctx, 1, "scale", normalized));
  }
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_rms_normalization(OpRegistry& r) {
  r.add({"RMSNormalization", 2, 2, 1, 1, infer_rms_norm});
}

}  // namespace kiln::ops
