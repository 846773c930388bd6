// LRN: local response normalization across channels.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_lrn(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input, got {}", dtype_name(dt));
  if (!ctx.node().has_attr("size")) return ctx.error("needs the attribute 'size'");
  const int64_t size = ctx.node().attr_int("size", 0);
  if (size <= 0) return ctx.error("attribute 'size' must be positive, got {}", size);
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank() && in.rank() < 2)
    return ctx.error("needs an input of rank >= 2 (N, C, ...), got {}", in.to_string());
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_lrn(OpRegistry& r) {
  r.add({"LRN", 1, 1, 1, 1, infer_lrn});
}

}  // namespace kiln::ops
