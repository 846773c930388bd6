// Expand: broadcasts the input against 'shape' both ways (a 1 in 'shape' keeps the input's dim).
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_expand(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DType dt = ctx.input_dtype(0);
  const Shape& ss = ctx.input_shape(1);
  if (ss.has_rank() && ss.rank() != 1) return ctx.error("'shape' must be 1-D, got {}", ss.to_string());
  std::vector<int64_t> target;
  if (ss.has_rank() && ss[0].is_static() && ss[0].value() > kMaxTensorRank)
    return ctx.error("'shape' has {} elements; kiln supports tensors of up to {} dims", ss[0].value(), kMaxTensorRank);
  if (constant_ints(ctx, 1, target)) {
    if (static_cast<int64_t>(target.size()) > kMaxTensorRank)
      return ctx.error("'shape' has {} elements; kiln supports tensors of up to {} dims", target.size(),
                       kMaxTensorRank);
    for (int64_t d : target)
      if (d < 0) return ctx.error("'shape' {} has a negative dim", dims_to_string(target));
    KILN_ASSIGN_OR_RETURN(Shape out, broadcast_shapes(ctx, {in, Shape::from_dims(target)}));
    ctx.set_output(0, dt, std::move(out));
    return Status();
  }
  if (!in.has_rank() || !ss.has_rank() || !ss[0].is_static()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  // Unknown target values: input dims > 1 must survive, the rest is unknown.
  const size_t rank = std::max<size_t>(in.rank(), static_cast<size_t>(ss[0].value()));
  std::vector<Dim> out(rank, Dim::unknown());
  for (size_t i = 0; i < in.rank(); ++i) {
    const Dim& d = in[i];
    if (d.is_static() && d.value() != 1) out[rank - in.rank() + i] = d;
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_expand(OpRegistry& r) { r.add({"Expand", 2, 2, 1, 1, infer_expand}); }

}  // namespace kiln::ops
