// InstanceNormalization: per sample and channel, normalize over the spatial dims, then scale[c] and B[c].
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_instance_norm(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input, got {}", dtype_name(dt));
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank()) {
    if (in.rank() < 2) return ctx.error("needs an input of rank >= 2 (N, C, ...), got {}", in.to_string());
    const char* names[] = {"input", "scale", "B"};
    for (size_t i = 1; i < 3; ++i) {
      const Shape& p = ctx.input_shape(i);
      if (!p.has_rank()) continue;
      if (p.rank() != 1 || (p[0].is_static() && in[1].is_static() && p[0].value() != in[1].value()))
        return ctx.error("input '{}' has shape {} but the input {} has {} channels", names[i], p.to_string(),
                         in.to_string(), in[1].to_string());
    }
  }
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_instance_normalization(OpRegistry& r) {
  r.add({"InstanceNormalization", 3, 3, 1, 1, infer_instance_norm});
}

}  // namespace kiln::ops
