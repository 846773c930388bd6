// NonZero: int64 [rank, count] coordinates of the non-zero elements, in row-major order; the count depends on
// the values.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_non_zero(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  Dim count = Dim::unknown();
  if (const Tensor* v = ctx.input_value(0)) {
    int64_t n = 0;
    for (int64_t i = 0; i < v->numel(); ++i) n += v->get_as_double(i) != 0.0;
    count = Dim(n);
  }
  const Dim rank = in.has_rank() ? Dim(static_cast<int64_t>(in.rank())) : Dim::unknown();
  ctx.set_output(0, DType::kI64, Shape(std::vector<Dim>{rank, count}));
  return Status();
}

}  // namespace

void register_non_zero(OpRegistry& r) { r.add({"NonZero", 1, 1, 1, 1, infer_non_zero}); }

}  // namespace kiln::ops
