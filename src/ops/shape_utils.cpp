#include "ops/shape_utils.h"

#include <algorithm>

namespace kiln::ops {

Result<Shape> broadcast_shapes(const InferContext& ctx, const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) {
    if (!s.has_rank()) return Shape::unknown_rank();
    rank = std::max(rank, s.rank());
  }
  std::vector<Dim> out(rank, Dim(1));
  for (size_t k = 0; k < shapes.size(); ++k) {
    const auto& s = shapes[k];
    size_t off = rank - s.rank();
    for (size_t i = 0; i < s.rank(); ++i) {
      const Dim& d = s[i];
      Dim& o = out[off + i];
      if (d.is_static() && d.value() == 1) continue;
      if (o.is_static() && o.value() == 1) {
        o = d;
      } else if (d.is_static() && o.is_static()) {
        if (d.value() != o.value()) {
          std::vector<std::string> all;
          for (const auto& x : shapes) all.push_back(x.to_string());
          return ctx.error("cannot broadcast shapes {} together: axis {} of the output is {} in one input and {} in "
                           "another (dims must match or be 1)",
                           fmt::join(all, " and "), off + i, o.value(), d.value());
        }
      } else if (d.is_static()) {
        o = d;  // a symbolic dim broadcast against a static one > 1 must equal it
      } else if (!o.same_as(d) && !o.is_static()) {
        o = Dim::unknown();
      }
    }
  }
  return Shape(out);
}

Result<Shape> broadcast_inputs(const InferContext& ctx) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i)) shapes.push_back(ctx.input_shape(i));
  return broadcast_shapes(ctx, shapes);
}

Result<int64_t> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return ctx.error("axis {} is out of range for a tensor of rank {} (allowed: {}..{})", axis, rank, -rank,
                     rank - 1);
  return axis < 0 ? axis + rank : axis;
}

bool constant_ints(const InferContext& ctx, size_t input, std::vector<int64_t>& out) {
  const Tensor* t = ctx.input_value(input);
  if (!t) return false;
  out = t->to_int_vector();
  return true;
}

Status infer_same_as_input0(InferContext& ctx) {
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
  return Status();
}

}  // namespace kiln::ops
