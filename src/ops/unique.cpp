// Unique: distinct elements (or slices along axis), with first-occurrence indices, inverse indices and counts.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_unique(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (dt == DType::kString) return ctx.unsupported("string tensors are not supported");
  const int64_t sorted = ctx.node().attr_int("sorted", 1);
  if (sorted != 0 && sorted != 1) return ctx.error("sorted must be 0 or 1, got {}", sorted);
  const Shape& x = ctx.input_shape(0);
  const Shape any = Shape(std::vector<Dim>{Dim::unknown()});
  Shape y = any, inverse = any;
  if (ctx.node().has_attr("axis")) {
    if (x.has_rank()) {
      if (x.rank() == 0) return ctx.error("axis is set but the input is a scalar");
      KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), x.rank()));
      y = x;
      y[axis] = Dim::unknown();
      inverse = Shape(std::vector<Dim>{x[axis]});
    } else {
      y = Shape::unknown_rank();
    }
  } else if (x.is_static()) {
    inverse = Shape(std::vector<Dim>{Dim(num_elements(x.static_dims()))});
  }
  ctx.set_output(0, dt, y);
  ctx.set_output(1, DType::kI64, any);
  ctx.set_output(2, DType::kI64, inverse);
  ctx.set_output(3, DType::kI64, any);
  return Status();
}

}  // namespace

void register_unique(OpRegistry& r) { r.add({"Unique", 1, 1, 1, 4, infer_unique}); }

}  // namespace kiln::ops
