// Tile: dim i repeats 'repeats[i]' times.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_tile(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DType dt = ctx.input_dtype(0);
  if (ctx.opset() < 6) return ctx.unsupported("Tile before opset 6 (tiles and axis inputs) is not supported");
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  std::vector<int64_t> repeats;
  if (!constant_ints(ctx, 1, repeats)) {
    ctx.set_output(0, dt, Shape(std::vector<Dim>(in.rank(), Dim::unknown())));
    return Status();
  }
  if (repeats.size() != in.rank())
    return ctx.error("repeats {} has {} entries but the input {} has rank {}", dims_to_string(repeats),
                     repeats.size(), in.to_string(), in.rank());
  std::vector<Dim> out;
  for (size_t i = 0; i < repeats.size(); ++i) {
    if (repeats[i] < 0) return ctx.error("repeats {} has a negative entry", dims_to_string(repeats));
    KILN_ASSIGN_OR_RETURN(Dim d, ctx.mul_dims(in[i], Dim(repeats[i])));
    out.push_back(d);
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_tile(OpRegistry& r) { r.add({"Tile", 2, 3, 1, 1, infer_tile}); }

}  // namespace kiln::ops
