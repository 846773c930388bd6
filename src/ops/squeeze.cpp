// Squeeze: removes size-1 dims, the listed axes (attribute before opset 13, input after) or all of them.
#include <set>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_squeeze(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DType dt = ctx.input_dtype(0);
  std::vector<int64_t> axes;
  bool has_axes = false;
  if (ctx.opset() < 13) {
    has_axes = ctx.node().has_attr("axes");
    axes = ctx.node().attr_ints("axes");
  } else if (ctx.has_input(1)) {
    has_axes = true;
    if (!constant_ints(ctx, 1, axes)) {
      // Only the number of removed dims is known.
      const Shape& as = ctx.input_shape(1);
      if (in.has_rank() && as.has_rank() && as.rank() == 1 && as[0].is_static() &&
          as[0].value() <= static_cast<int64_t>(in.rank()))
        ctx.set_output(0, dt, Shape(std::vector<Dim>(in.rank() - as[0].value(), Dim::unknown())));
      else
        ctx.set_output(0, dt, Shape::unknown_rank());
      return Status();
    }
  }
  // An empty axes list squeezes every size-1 dim, like an omitted one (as onnxruntime does).
  if (axes.empty()) has_axes = false;
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  std::set<int64_t> drop;
  if (has_axes) {
    for (int64_t a : axes) {
      if (a < -rank || a >= rank)
        return ctx.error("axis {} is out of range for the input {} of rank {}", a, in.to_string(), rank);
      const int64_t n = a < 0 ? a + rank : a;
      if (!drop.insert(n).second) return ctx.error("axes {} name axis {} twice", dims_to_string(axes), n);
      if (in[n].is_static() && in[n].value() != 1)
        return ctx.error("cannot squeeze axis {} of the input {}: its size is {}, not 1", a, in.to_string(),
                         in[n].value());
    }
  } else {
    for (int64_t i = 0; i < rank; ++i) {
      // A symbolic dim might be 1 at run time, so which dims go is unknown.
      if (!in[i].is_static()) {
        ctx.set_output(0, dt, Shape::unknown_rank());
        return Status();
      }
      if (in[i].value() == 1) drop.insert(i);
    }
  }
  std::vector<Dim> out;
  for (int64_t i = 0; i < rank; ++i)
    if (!drop.count(i)) out.push_back(in[i]);
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_squeeze(OpRegistry& r) { r.add({"Squeeze", 1, 2, 1, 1, infer_squeeze}); }

}  // namespace kiln::ops
