// MeanVarianceNormalization: (X - mean) / (std + 1e-9) over `axes` (default [0, 2, 3]).
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_mvn(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input, got {}", dtype_name(dt));
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank()) {
    const int64_t rank = static_cast<int64_t>(in.rank());
    const auto axes = ctx.node().attr_ints("axes", {0, 2, 3});
    std::vector<bool> seen(rank, false);
    for (int64_t a : axes) {
      if (a < -rank || a >= rank)
        return ctx.error("axis {} in axes {} is out of range for an input of rank {}", a,
                         dims_to_string(axes), rank);
      int64_t k = a < 0 ? a + rank : a;
      if (seen[k]) return ctx.error("axes {} names axis {} twice", dims_to_string(axes), k);
      seen[k] = true;
    }
  }
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_mean_variance_normalization(OpRegistry& r) {
  r.add({"MeanVarianceNormalization", 1, 1, 1, 1, infer_mvn});
}

}  // namespace kiln::ops
