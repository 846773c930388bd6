// TopK: the k largest (or smallest) values along an axis and their int64 indices. k is an attribute before
// opset 10, then a 1-element input.
#include <optional>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_top_k(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (dt == DType::kBool || dt == DType::kString)
    return ctx.error("needs a numeric input, got {}", dtype_name(dt));
  std::optional<int64_t> k;  // unknown until K is a constant
  if (ctx.opset() < 10) {
    if (!ctx.node().has_attr("k")) return ctx.error("needs the attribute 'k' before opset 10");
    k = ctx.node().attr_int("k", 0);
  } else {
    if (!ctx.has_input(1)) return ctx.error("needs the input 'K' from opset 10 on");
    if (ctx.input_dtype(1) != DType::kI64)
      return ctx.error("input 'K' must be int64, got {}", dtype_name(ctx.input_dtype(1)));
    const Shape& ks = ctx.input_shape(1);
    if (ks.is_static() && num_elements(ks.static_dims()) != 1)
      return ctx.error("input 'K' must hold one value, got shape {}", ks.to_string());
    std::vector<int64_t> kv;
    if (constant_ints(ctx, 1, kv) && kv.size() == 1) k = kv[0];
  }
  if (k && *k < 0) return ctx.error("k must be >= 0, got {}", *k);
  const Shape& in = ctx.input_shape(0);
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    ctx.set_output(1, DType::kI64, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  if (rank == 0) return ctx.error("needs an input of rank >= 1, got a scalar");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", -1), rank));
  if (k && in[axis].is_static() && *k > in[axis].value())
    return ctx.error("k = {} is larger than axis {} of the input {}", *k, axis, in.to_string());
  std::vector<Dim> out = in.dims();
  out[axis] = k ? Dim(*k) : Dim::unknown();
  ctx.set_output(0, dt, Shape(out));
  ctx.set_output(1, DType::kI64, Shape(out));
  return Status();
}

}  // namespace

void register_top_k(OpRegistry& r) {
  r.add({"TopK", 1, 2, 2, 2, infer_top_k});
}

}  // namespace kiln::ops
