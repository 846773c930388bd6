// GatherElements: out has the indices' shape; out[i] = data[i with axis replaced by indices[i]].
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_gather_elements(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  if (!is_integer(ctx.input_dtype(1)))
    return ctx.error("indices must be int32 or int64, got {}", dtype_name(ctx.input_dtype(1)));
  if (data.has_rank() && idx.has_rank()) {
    const int64_t rank = static_cast<int64_t>(data.rank());
    if (rank == 0) return ctx.error("data must be at least 1-D, got a scalar");
    if (idx.rank() != data.rank())
      return ctx.error("indices {} must have the same rank as the data {}", idx.to_string(), data.to_string());
    KILN_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank));
    // Off the axis, an index row reads the data at its own position: it may be shorter, not longer.
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis && idx[d].is_static() && data[d].is_static() && idx[d].value() > data[d].value())
        return ctx.error("indices {} are longer than the data {} along axis {} (only axis {} is indexed)",
                         idx.to_string(), data.to_string(), d, axis);
  }
  ctx.set_output(0, ctx.input_dtype(0), idx);
  return Status();
}

}  // namespace

void register_gather_elements(OpRegistry& r) { r.add({"GatherElements", 2, 2, 1, 1, infer_gather_elements}); }

}  // namespace kiln::ops
