// NegativeLogLikelihoodLoss; its shape rules are shared with SoftmaxCrossEntropyLoss (ops/loss.h).
#include "ops/loss.h"
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

Status infer_class_loss(InferContext& ctx, const char* input_name, const char* target_name) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("input '{}' must be float, got {}", input_name, dtype_name(dt));
  if (ctx.input_dtype(1) != DType::kI32 && ctx.input_dtype(1) != DType::kI64)
    return ctx.error("input '{}' must be int32 or int64, got {}", target_name,
                     dtype_name(ctx.input_dtype(1)));
  const std::string reduction = ctx.node().attr_string("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean")
    return ctx.unsupported("reduction '{}' is not supported (none, sum, mean)", reduction);
  const Shape& in = ctx.input_shape(0);
  const Shape& target = ctx.input_shape(1);
  if (in.has_rank() && in.rank() < 2)
    return ctx.error("input '{}' must be [N, C, ...], got {}", input_name, in.to_string());
  if (in.has_rank() && target.has_rank()) {
    bool ok = target.rank() + 1 == in.rank();
    for (size_t i = 0; ok && i < target.rank(); ++i) {
      const Dim& a = target[i];
      const Dim& b = in[i == 0 ? 0 : i + 1];
      ok = !(a.is_static() && b.is_static() && a.value() != b.value());
    }
    if (!ok)
      return ctx.error("input '{}' {} needs '{}' shaped like it without the class axis 1, got {}", input_name,
                       in.to_string(), target_name, target.to_string());
  }
  if (ctx.has_input(2)) {
    const Shape& w = ctx.input_shape(2);
    if (w.has_rank() && (w.rank() != 1 || (in.has_rank() && w[0].is_static() && in[1].is_static() &&
                                           w[0].value() != in[1].value())))
      return ctx.error("weight has shape {} but the input {} has {} classes", w.to_string(),
                       in.has_rank() ? in.to_string() : "?", in.has_rank() ? in[1].to_string() : "?");
  }
  Shape loss = Shape::scalar();
  if (reduction == "none") {
    if (target.has_rank())
      loss = target;
    else if (in.has_rank()) {
      std::vector<Dim> d = in.dims();
      d.erase(d.begin() + 1);
      loss = Shape(d);
    } else {
      loss = Shape::unknown_rank();
    }
  }
  ctx.set_output(0, dt, loss);
  ctx.set_output(1, dt, in);  // SoftmaxCrossEntropyLoss's log_prob
  return Status();
}

namespace {

Status infer_nll(InferContext& ctx) {
  return infer_class_loss(ctx, "input", "target");
}

}  // namespace

void register_nll_loss(OpRegistry& r) {
  r.add({"NegativeLogLikelihoodLoss", 2, 3, 1, 1, infer_nll});
}

}  // namespace kiln::ops
