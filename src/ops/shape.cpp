// Shape and Size: their outputs are known at build time whenever the input dims are static, which is what
// lets torch's Shape->Gather->Concat->Reshape chains fold away.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

void shape_range(const InferContext& ctx, int64_t rank, int64_t& start, int64_t& end) {
  start = ctx.node().attr_int("start", 0);
  end = ctx.node().attr_int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  if (end < start) end = start;
}

Status infer_shape(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.has_rank()) {
    ctx.set_output(0, DType::kI64, Shape(std::vector<Dim>{Dim::unknown()}));
    return Status();
  }
  int64_t start, end;
  shape_range(ctx, static_cast<int64_t>(in.rank()), start, end);
  ctx.set_output(0, DType::kI64, Shape({end - start}));
  return Status();
}

Status infer_size(InferContext& ctx) {
  ctx.set_output(0, DType::kI64, Shape::scalar());
  return Status();
}

}  // namespace

void register_shape(OpRegistry& r) {
  r.add({"Shape", 1, 1, 1, 1, infer_shape});
  r.add({"Size", 1, 1, 1, 1, infer_size});
}

}  // namespace kiln::ops
