// Flatten: [d0..d(axis-1)] and [d(axis)..] collapse into a 2-D [outer, inner]; axis may equal the rank.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_flatten(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.has_rank()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>(2, Dim::unknown())));
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < -rank || axis > rank)
    return ctx.error("axis {} is out of range for a tensor of rank {} (allowed: {}..{})", axis, rank, -rank, rank);
  if (axis < 0) axis += rank;
  Dim outer(1), inner(1);
  for (int64_t i = 0; i < rank; ++i) {
    Dim& part = i < axis ? outer : inner;
    KILN_ASSIGN_OR_RETURN(part, ctx.mul_dims(part, in[i]));
  }
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>{outer, inner}));
  return Status();
}

}  // namespace

void register_flatten(OpRegistry& r) { r.add({"Flatten", 1, 1, 1, 1, infer_flatten}); }

}  // namespace kiln::ops
