// Constant and ConstantOfShape.
#include "ops/constant.h"

#include "ops/op_table.h"
#include "ops/shape_utils.h"
#include "util/error.h"

namespace kiln::ops {

Result<Tensor> constant_node_value(const ir::Node& node) {
  using K = ir::Attribute::Kind;
  if (node.attrs.size() != 1)
    return invalid_model("{}: needs exactly one value attribute, has {}", node.label(), node.attrs.size());
  const auto& [key, a] = *node.attrs.begin();
  if (key == "value" && a.kind == K::kTensor) return a.t;
  if (key == "value_float" && a.kind == K::kFloat) return Tensor::scalar_f32(a.f);
  if (key == "value_int" && a.kind == K::kInt) return Tensor::scalar_i64(a.i);
  if (key == "value_floats" && a.kind == K::kFloats)
    return Tensor::from_vector(DType::kF32, {static_cast<int64_t>(a.floats.size())}, a.floats);
  if (key == "value_ints" && a.kind == K::kInts)
    return Tensor::from_vector(DType::kI64, {static_cast<int64_t>(a.ints.size())}, a.ints);
  if (key == "sparse_value") return unsupported("{}: sparse constants are not supported", node.label());
  if (key.rfind("value_string", 0) == 0)
    return unsupported("{}: string tensors are not supported", node.label());
  return invalid_model("{}: unknown value attribute '{}'", node.label(), key);
}

namespace {

Status infer_constant(InferContext& ctx) {
  auto v = constant_node_value(ctx.node());
  if (!v.ok()) return v.status();
  ctx.set_output(0, v->dtype(), Shape::from_dims(v->dims()));
  return Status();
}

Status infer_constant_of_shape(InferContext& ctx) {
  DType dt = DType::kF32;
  if (const auto* a = ctx.node().attr("value")) {
    if (a->kind != ir::Attribute::Kind::kTensor || a->t.numel() != 1)
      return ctx.error("attribute 'value' must be a one-element tensor");
    dt = a->t.dtype();
  }
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank() && in.rank() != 1) return ctx.error("input must be 1-D, got {}", in.to_string());
  std::vector<int64_t> dims;
  if (constant_ints(ctx, 0, dims)) {
    if (static_cast<int64_t>(dims.size()) > kMaxTensorRank)
      return ctx.error("the shape input has {} elements; kiln supports tensors of up to {} dims", dims.size(),
                       kMaxTensorRank);
    for (int64_t d : dims)
      if (d < 0) return ctx.error("shape has a negative dim {}", d);
    ctx.set_output(0, dt, Shape::from_dims(dims));
  } else if (in.has_rank() && in[0].is_static()) {
    if (in[0].value() > kMaxTensorRank)
      return ctx.error("the shape input has {} elements; kiln supports tensors of up to {} dims", in[0].value(),
                       kMaxTensorRank);
    ctx.set_output(0, dt, Shape(std::vector<Dim>(in[0].value(), Dim::unknown())));
  } else {
    ctx.set_output(0, dt, Shape::unknown_rank());
  }
  return Status();
}

}  // namespace

void register_constant(OpRegistry& r) {
  r.add({"Constant", 0, 0, 1, 1, infer_constant});
  r.add({"ConstantOfShape", 1, 1, 1, 1, infer_constant_of_shape});
}

}  // namespace kiln::ops
