// Gather: out = data[:axis] + indices.shape + data[axis+1:], picking slices along 'axis'.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_gather(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const DType dt = ctx.input_dtype(0);
  if (!is_integer(ctx.input_dtype(1)))
    return ctx.error("indices must be int32 or int64, got {}", dtype_name(ctx.input_dtype(1)));
  if (!data.has_rank() || !idx.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(data.rank());
  if (rank == 0) return ctx.error("data must be at least 1-D, got a scalar");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank));
  std::vector<int64_t> values;
  if (data[axis].is_static() && constant_ints(ctx, 1, values)) {
    const int64_t d = data[axis].value();
    for (int64_t v : values)
      if (v < -d || v >= d)
        return ctx.error("index {} is out of range for axis {} of the data {} (size {})", v, axis, data.to_string(), d);
  }
  std::vector<Dim> out(data.dims().begin(), data.dims().begin() + axis);
  out.insert(out.end(), idx.dims().begin(), idx.dims().end());
  out.insert(out.end(), data.dims().begin() + axis + 1, data.dims().end());
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_gather(OpRegistry& r) { r.add({"Gather", 2, 2, 1, 1, infer_gather}); }

}  // namespace kiln::ops
