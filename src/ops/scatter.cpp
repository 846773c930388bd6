// ScatterElements (and its deprecated opset 9-10 name Scatter) and ScatterND: the output is a copy of data
// with 'updates' written (or reduced: add/mul/max/min) at the positions the indices name.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status check_common(InferContext& ctx) {
  if (!is_integer(ctx.input_dtype(1)))
    return ctx.error("indices must be int32 or int64, got {}", dtype_name(ctx.input_dtype(1)));
  if (ctx.input_dtype(2) != ctx.input_dtype(0))
    return ctx.error("updates are {} but data is {}; both must have the same dtype", dtype_name(ctx.input_dtype(2)),
                     dtype_name(ctx.input_dtype(0)));
  const std::string red = ctx.node().attr_string("reduction", "none");
  if (red != "none" && red != "add" && red != "mul" && red != "max" && red != "min")
    return ctx.unsupported("reduction '{}' is not supported (none, add, mul, max, min)", red);
  return Status();
}

bool dims_differ(const Dim& a, const Dim& b) { return a.is_static() && b.is_static() && a.value() != b.value(); }

Status infer_scatter_elements(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_common(ctx));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const Shape& upd = ctx.input_shape(2);
  if (data.has_rank()) {
    const int64_t rank = static_cast<int64_t>(data.rank());
    if (rank == 0) return ctx.error("data must be at least 1-D, got a scalar");
    KILN_RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank).status());
    if (idx.has_rank() && idx.rank() != data.rank())
      return ctx.error("indices {} must have the same rank as the data {}", idx.to_string(), data.to_string());
  }
  if (idx.has_rank() && upd.has_rank()) {
    bool differ = idx.rank() != upd.rank();
    for (size_t i = 0; !differ && i < idx.rank(); ++i) differ = dims_differ(idx[i], upd[i]);
    if (differ) return ctx.error("updates {} must have the shape of the indices {}", upd.to_string(), idx.to_string());
  }
  ctx.set_output(0, ctx.input_dtype(0), data);
  return Status();
}

Status infer_scatter_nd(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_common(ctx));
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const Shape& upd = ctx.input_shape(2);
  if (data.has_rank() && idx.has_rank()) {
    if (idx.rank() == 0) return ctx.error("indices must be at least 1-D, got a scalar");
    const Dim& k = idx[idx.rank() - 1];
    if (k.is_static() && k.value() > static_cast<int64_t>(data.rank()))
      return ctx.error("the last indices dim is {} but the data {} has rank {}", k.value(), data.to_string(),
                       data.rank());
    if (k.is_static() && upd.has_rank()) {
      // updates = indices.shape[:-1] + data.shape[k:]
      std::vector<Dim> want(idx.dims().begin(), idx.dims().end() - 1);
      want.insert(want.end(), data.dims().begin() + k.value(), data.dims().end());
      bool differ = want.size() != upd.rank();
      for (size_t i = 0; !differ && i < want.size(); ++i) differ = dims_differ(want[i], upd[i]);
      if (differ)
        return ctx.error("updates {} must have shape {} (indices {} into data {})", upd.to_string(),
                         Shape(want).to_string(), idx.to_string(), data.to_string());
    }
  }
  ctx.set_output(0, ctx.input_dtype(0), data);
  return Status();
}

}  // namespace

void register_scatter(OpRegistry& r) {
  r.add({"ScatterElements", 3, 3, 1, 1, infer_scatter_elements});
  r.add({"Scatter", 3, 3, 1, 1, infer_scatter_elements});
  r.add({"ScatterND", 3, 3, 1, 1, infer_scatter_nd});
}

}  // namespace kiln::ops
