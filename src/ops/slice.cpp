// Slice: starts/ends/axes (attributes before opset 10) plus optional steps (inputs from opset 10).
#include "ops/slice.h"

#include <limits>
#include <set>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

// Symbolic dims survive the two slices that keep every element: [0:INT_MAX:1] and [-1:INT_MIN:-1].
Dim symbolic_slice(const Dim& d, int64_t start, int64_t end, int64_t step) {
  constexpr int64_t kHuge = std::numeric_limits<int32_t>::max();
  if (step == 1 && start == 0 && end >= kHuge) return d;
  if (step == -1 && start == -1 && end <= -kHuge) return d;
  return Dim::unknown();
}

Status infer_slice(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DType dt = ctx.input_dtype(0);
  if (ctx.opset() >= 10 && (!ctx.has_input(1) || !ctx.has_input(2)))
    return ctx.error("inputs 'starts' and 'ends' are required");
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  bool known = true;
  if (ctx.opset() >= 10)
    for (size_t i = 1; i <= 4; ++i)
      if (ctx.has_input(i) && !ctx.input_value(i)) known = false;
  if (!known) {
    // Only the sliced axes change; when 'axes' is not known either, any may.
    std::vector<Dim> out = in.dims();
    std::vector<int64_t> axes;
    if (ctx.has_input(3) && constant_ints(ctx, 3, axes)) {
      for (int64_t a : axes) {
        KILN_ASSIGN_OR_RETURN(int64_t n, normalize_axis(ctx, a, rank));
        out[n] = Dim::unknown();
      }
    } else {
      out.assign(rank, Dim::unknown());
    }
    ctx.set_output(0, dt, Shape(out));
    return Status();
  }
  auto v = [&](size_t i) { return ctx.has_input(i) ? ctx.input_value(i) : nullptr; };
  SliceParams p = slice_params(ctx.node(), ctx.opset(), v(1), v(2), v(3), v(4));
  const size_t n = p.starts.size();
  if (p.ends.size() != n || p.axes.size() != n || p.steps.size() != n)
    return ctx.error("starts {}, ends {}, axes {} and steps {} must have the same length", dims_to_string(p.starts),
                     dims_to_string(p.ends), dims_to_string(p.axes), dims_to_string(p.steps));
  std::vector<Dim> out = in.dims();
  std::set<int64_t> seen;
  for (size_t i = 0; i < n; ++i) {
    if (p.axes[i] < -rank || p.axes[i] >= rank)
      return ctx.error("axis {} is out of range for the input {} of rank {}", p.axes[i], in.to_string(), rank);
    const int64_t axis = p.axes[i] < 0 ? p.axes[i] + rank : p.axes[i];
    if (!seen.insert(axis).second) return ctx.error("axes {} name axis {} twice", dims_to_string(p.axes), axis);
    if (p.steps[i] == 0) return ctx.error("steps {} contain 0", dims_to_string(p.steps));
    const Dim& d = in[axis];
    out[axis] = d.is_static() ? Dim(resolve_slice(d.value(), p.starts[i], p.ends[i], p.steps[i]).size)
                              : symbolic_slice(d, p.starts[i], p.ends[i], p.steps[i]);
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_slice(OpRegistry& r) { r.add({"Slice", 1, 5, 1, 1, infer_slice}); }

}  // namespace kiln::ops
