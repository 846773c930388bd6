// FusedAddLayerNorm (kiln domain), made by fuse_add_layer_norm from Add(X, R) → LayerNormalization over the
// last axis: S = X + R, Y = LayerNorm(S) * gamma + beta over the last dim, statistics in f32. Inputs X, R
// (the residual, X's shape: no broadcasting), gamma and optional beta (broadcasting to [D], D = X's last dim,
// like LayerNormalization's Scale and B); outputs Y and optional S (a transformer reads the sum again as the
// next residual). Attribute epsilon (default 1e-5, as LayerNormalization).
#include <cmath>

#include "ops/normalization_util.h"
#include "ops/op_table.h"

namespace kiln::ops {

namespace {

bool dims_conflict(const Dim& a, const Dim& b) {
  return a.is_static() && b.is_static() && a.value() != b.value();
}

Status infer_fused_add_layer_norm(InferContext& ctx) {
  const ir::Node& node = ctx.node();
  for (size_t i = 0; i < 3; ++i)
    if (!ctx.has_input(i))
      return ctx.error("input {} ({}) is required", i, i == 0 ? "X" : (i == 1 ? "R" : "gamma"));
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input X, got {}", dtype_name(dt));
  if (ctx.input_dtype(1) != dt)
    return ctx.error("the residual R ('{}') is {} but X is {}; both must have the same dtype", node.inputs[1],
                     dtype_name(ctx.input_dtype(1)), dtype_name(dt));
  for (size_t i = 2; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && !is_float(ctx.input_dtype(i)))
      return ctx.error("input {} ('{}') must be a float tensor, got {}", i, node.inputs[i],
                       dtype_name(ctx.input_dtype(i)));
  const float eps = node.attr_float("epsilon", 1e-5f);
  if (!(eps >= 0.f) || !std::isfinite(eps)) return ctx.error("epsilon {} must be finite and >= 0", eps);
  const Shape& x = ctx.input_shape(0);
  const Shape& r = ctx.input_shape(1);
  ctx.set_output(0, dt, x);
  if (ctx.num_outputs() > 1) ctx.set_output(1, dt, x);
  if (x.has_rank() && x.rank() == 0) return ctx.error("needs an input X of rank >= 1, got a scalar");
  if (x.has_rank() && r.has_rank()) {
    // No broadcasting: the pass fuses only residuals whose shape is provably X's, and run time checks it
    // here.
    bool bad = r.rank() != x.rank();
    for (size_t i = 0; !bad && i < r.rank(); ++i) bad = dims_conflict(r[i], x[i]);
    if (bad) return ctx.error("the residual R {} must have X's shape {}", r.to_string(), x.to_string());
  }
  if (x.has_rank()) {
    const std::vector<Dim> last = {x[x.rank() - 1]};
    KILN_RETURN_IF_ERROR(check_broadcasts_to(ctx, 2, "gamma", last));
    if (ctx.has_input(3)) KILN_RETURN_IF_ERROR(check_broadcasts_to(ctx, 3, "beta", last));
  }
  return Status();
}

}  // namespace

void register_fused_add_layer_norm(OpRegistry& r) {
  OpDef def{"FusedAddLayerNorm", 3, 4, 1, 2, infer_fused_add_layer_norm};
  def.domain = kKilnDomain;
  r.add(def);
}

}  // namespace kiln::ops
