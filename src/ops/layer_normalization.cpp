// LayerNormalization: normalizes over dims[axis:], optional Mean and InvStdDev outputs (dtype from
// stash_type).
#include "ops/normalization_util.h"
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_layer_norm(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input X, got {}", dtype_name(dt));
  const int64_t stash = ctx.node().attr_int("stash_type", 1);
  auto stash_dt = dtype_from_onnx(static_cast<int32_t>(stash));
  if (!stash_dt || !is_float(*stash_dt)) return ctx.unsupported("stash_type {} is not supported", stash);
  const Shape& in = ctx.input_shape(0);
  ctx.set_output(0, dt, in);
  if (!in.has_rank()) {
    ctx.set_output(1, *stash_dt, Shape::unknown_rank());
    ctx.set_output(2, *stash_dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  if (rank == 0) return ctx.error("needs an input X of rank >= 1, got a scalar");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", -1), rank));
  std::vector<Dim> normalized(in.dims().begin() + axis, in.dims().end());
  KILN_RETURN_IF_ERROR(check_broadcasts_to(ctx, 1, "Scale", normalized));
  if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(check_broadcasts_to(ctx, 2, "B", normalized));
  std::vector<Dim> stat(in.dims().begin(), in.dims().begin() + axis);
  stat.resize(rank, Dim(1));
  ctx.set_output(1, *stash_dt, Shape(stat));
  ctx.set_output(2, *stash_dt, Shape(stat));
  return Status();
}

}  // namespace

void register_layer_normalization(OpRegistry& r) {
  r.add({"LayerNormalization", 2, 3, 1, 3, infer_layer_norm});
}

}  // namespace kiln::ops
