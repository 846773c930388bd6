// OneHot: inserts a 'depth'-sized dim at 'axis'; on_value where the index matches, off_value elsewhere.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_one_hot(InferContext& ctx) {
  const Shape& idx = ctx.input_shape(0);
  const Shape& vals = ctx.input_shape(2);
  const DType dt = ctx.input_dtype(2);
  if (vals.has_rank() && (vals.rank() != 1 || (vals[0].is_static() && vals[0].value() != 2)))
    return ctx.error("values must be [off_value, on_value] (shape [2]), got {}", vals.to_string());
  const Shape& ds = ctx.input_shape(1);
  if (ds.has_rank() && ds.rank() > 1) return ctx.error("depth must be a scalar, got shape {}", ds.to_string());
  Dim depth = Dim::unknown();
  if (const Tensor* d = ctx.input_value(1)) {
    if (d->numel() != 1) return ctx.error("depth must have one element, got {}", d->describe());
    const int64_t v = static_cast<int64_t>(d->get_as_double(0));
    if (v < 1) return ctx.error("depth must be positive, got {}", v);
    depth = Dim(v);
  }
  if (!idx.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t out_rank = static_cast<int64_t>(idx.rank()) + 1;
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", -1), out_rank));
  std::vector<Dim> out = idx.dims();
  out.insert(out.begin() + axis, depth);
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_one_hot(OpRegistry& r) { r.add({"OneHot", 3, 3, 1, 1, infer_one_hot}); }

}  // namespace kiln::ops
