// Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the last two dims, zeroing the rest.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_trilu(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank() && in.rank() < 2) return ctx.error("input must be at least 2-D, got {}", in.to_string());
  if (ctx.has_input(1)) {
    const Shape& k = ctx.input_shape(1);
    if (k.has_rank() && k.rank() != 0 && !(k.rank() == 1 && k[0].is_static() && k[0].value() == 1))
      return ctx.error("k must be a scalar, got shape {}", k.to_string());
  }
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_trilu(OpRegistry& r) { r.add({"Trilu", 1, 2, 1, 1, infer_trilu}); }

}  // namespace kiln::ops
