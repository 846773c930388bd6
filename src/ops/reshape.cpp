// Reshape: 0 copies the input dim (unless allowzero), -1 is inferred.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_reshape(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const bool allowzero = ctx.node().attr_int("allowzero", 0) != 0;
  std::vector<int64_t> target;
  if (ctx.opset() < 5) {
    target = ctx.node().attr_ints("shape");
  } else if (!ctx.has_input(1)) {
    return ctx.error("needs its shape input (input 1) from opset 5 on; this model is opset {}", ctx.opset());
  } else if (!constant_ints(ctx, 1, target)) {
    const Shape& s = ctx.input_shape(1);
    if (!s.has_rank() || s.rank() != 1 || !s[0].is_static()) {
      ctx.set_output(0, ctx.input_dtype(0), Shape::unknown_rank());
      return Status();
    }
    if (s[0].value() > kMaxTensorRank)
      return ctx.error("the shape input has {} elements; kiln supports tensors of up to {} dims", s[0].value(),
                       kMaxTensorRank);
    ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>(s[0].value(), Dim::unknown())));
    return Status();
  }
  std::vector<Dim> out(target.size());
  int infer_at = -1;
  Dim known_product(1);
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t t = target[i];
    if (t == -1) {
      if (infer_at >= 0) return ctx.error("shape {} has more than one -1", dims_to_string(target));
      infer_at = static_cast<int>(i);
      continue;
    }
    if (t < -1) return ctx.error("shape {} has an invalid dim {}", dims_to_string(target), t);
    if (t == 0 && !allowzero) {
      if (!in.has_rank()) {
        out[i] = Dim::unknown();
      } else if (i >= in.rank()) {
        return ctx.error("shape {} copies dim {} (0) but the input {} has rank {}", dims_to_string(target), i,
                         in.to_string(), in.rank());
      } else {
        out[i] = in[i];
      }
    } else {
      out[i] = Dim(t);
    }
    KILN_ASSIGN_OR_RETURN(known_product, ctx.mul_dims(known_product, out[i]));
  }
  if (infer_at >= 0) {
    if (allowzero && std::find(target.begin(), target.end(), 0) != target.end())
      return ctx.error("shape {} mixes 0 and -1 with allowzero=1", dims_to_string(target));
    out[infer_at] = Dim::unknown();
    if (in.is_static() && known_product.is_static()) {
      int64_t total = num_elements(in.static_dims());
      int64_t k = known_product.value();
      if (k == 0 || total % k != 0)
        return ctx.error("cannot reshape {} ({} elements) to {}", in.to_string(), total, dims_to_string(target));
      out[infer_at] = Dim(total / k);
    } else if (in.has_rank() && !in.is_static()) {
      // Common torch pattern: [b, s, h*d] -> [b, s, h, -1] keeps symbols when the rest cancels out.
      Dim total(1);
      for (const auto& d : in.dims()) {
        KILN_ASSIGN_OR_RETURN(total, ctx.mul_dims(total, d));
      }
      if (total.same_as(known_product)) out[infer_at] = Dim(1);
    }
  } else if (in.is_static()) {
    Shape o(out);
    if (o.is_static() && num_elements(o.static_dims()) != num_elements(in.static_dims()))
      return ctx.error("cannot reshape {} ({} elements) to {} ({} elements)", in.to_string(),
                       num_elements(in.static_dims()), dims_to_string(target), num_elements(o.static_dims()));
  }
  ctx.set_output(0, ctx.input_dtype(0), Shape(out));
  return Status();
}

}  // namespace

void register_reshape(OpRegistry& r) { r.add({"Reshape", 1, 2, 1, 1, infer_reshape}); }

}  // namespace kiln::ops
