// Concat: inputs agree on every dim but 'axis', where the sizes add up.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_concat(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  const Shape* ranked = nullptr;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.error("input {} is omitted; Concat has no optional inputs", i);
    if (ctx.input_dtype(i) != dt)
      return ctx.error("input {} ('{}') is {} but input 0 is {}; all inputs must have the same dtype", i,
                       ctx.node().inputs[i], dtype_name(ctx.input_dtype(i)), dtype_name(dt));
    if (!ranked && ctx.input_shape(i).has_rank()) ranked = &ctx.input_shape(i);
  }
  if (!ctx.node().has_attr("axis") && ctx.opset() >= 4) return ctx.error("attribute 'axis' is required");
  const int64_t axis_attr = ctx.node().attr_int("axis", 1);
  if (!ranked) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(ranked->rank());
  if (rank == 0) return ctx.error("cannot concatenate scalars (inputs must be at least 1-D)");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, axis_attr, rank));
  std::vector<Dim> out = ranked->dims();
  out[axis] = Dim(0);
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input_shape(i);
    if (!s.has_rank()) {
      out[axis] = Dim::unknown();
      continue;
    }
    if (static_cast<int64_t>(s.rank()) != rank)
      return ctx.error("input {} has shape {} but input 0 has rank {} ({}); all inputs must have the same rank", i,
                       s.to_string(), rank, ranked->to_string());
    for (int64_t d = 0; d < rank; ++d) {
      if (d == axis) continue;
      if (s[d].is_static() && out[d].is_static() && s[d].value() != out[d].value())
        return ctx.error("input {} has shape {} but another input has {}: dim {} differs ({} vs {}) and only axis {} "
                         "may differ",
                         i, s.to_string(), ranked->to_string(), d, s[d].value(), out[d].value(), axis);
      if (s[d].is_static() || out[d].is_unknown()) out[d] = s[d];
    }
    KILN_ASSIGN_OR_RETURN(out[axis], ctx.add_dims(out[axis], s[axis]));
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_concat(OpRegistry& r) { r.add({"Concat", 1, -1, 1, 1, infer_concat}); }

}  // namespace kiln::ops
