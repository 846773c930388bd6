// BatchNormalization. Inference uses the given mean/var. Training (training_mode=1 from opset 14; extra
// outputs before it) normalizes with the batch statistics and also returns the momentum-updated running
// mean/var. Before opset 9, spatial=0 means the parameters are per activation (shape dims[1:]) instead of per
// channel.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

bool any_extra_output(const InferContext& ctx) {
  for (size_t i = 1; i < ctx.num_outputs(); ++i)
    if (ctx.has_output(i)) return true;
  return false;
}

bool per_activation(const InferContext& ctx) {
  return ctx.opset() < 9 && ctx.node().attr_int("spatial", 1) == 0;
}

Status infer_batch_norm(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input X, got {}", dtype_name(dt));
  const Shape& in = ctx.input_shape(0);
  const bool training =
      ctx.opset() >= 14 ? ctx.node().attr_int("training_mode", 0) != 0 : any_extra_output(ctx);
  if (ctx.opset() >= 14 && !training && any_extra_output(ctx))
    return ctx.error("running_mean/running_var outputs need training_mode=1");
  if (in.has_rank()) {
    if (in.rank() < 2) return ctx.error("needs X of rank >= 2 (N, C, ...), got {}", in.to_string());
    std::vector<Dim> want;
    if (per_activation(ctx))
      want.assign(in.dims().begin() + 1, in.dims().end());
    else
      want.push_back(in[1]);
    const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (size_t i = 1; i < 5; ++i) {
      const Shape& p = ctx.input_shape(i);
      if (!p.has_rank()) continue;
      bool ok = p.rank() == want.size();
      for (size_t k = 0; ok && k < want.size(); ++k)
        ok = !(p[k].is_static() && want[k].is_static() && p[k].value() != want[k].value());
      if (!ok)
        return ctx.error("input '{}' has shape {} but X {} needs {}", names[i], p.to_string(), in.to_string(),
                         Shape(want).to_string());
    }
  }
  ctx.set_output(0, dt, in);
  for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, ctx.input_dtype(3), ctx.input_shape(3));
  return Status();
}

}  // namespace

void register_batch_normalization(OpRegistry& r) {
  r.add({"BatchNormalization", 5, 5, 1, 5, infer_batch_norm});
}

}  // namespace kiln::ops
