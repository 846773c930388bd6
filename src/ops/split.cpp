// Split: sizes come from 'split' (attribute before opset 13, input after), else equal parts (opset 18's
// num_outputs allows a smaller last part).
#include <numeric>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_split(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DType dt = ctx.input_dtype(0);
  const int64_t n_out = static_cast<int64_t>(ctx.num_outputs());
  if (!in.has_rank()) {
    for (int64_t i = 0; i < n_out; ++i) ctx.set_output(i, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank));
  if (rank == 0) return ctx.error("cannot split a scalar");
  const Dim& dim = in[axis];
  std::vector<int64_t> split;
  bool sizes_known = true;
  if (ctx.opset() < 13) {
    split = ctx.node().attr_ints("split");
  } else if (ctx.has_input(1)) {
    sizes_known = constant_ints(ctx, 1, split);
  }
  std::vector<Dim> sizes(n_out, Dim::unknown());
  if (!sizes_known) {
    // Data-dependent split sizes: only the axis dims are unknown.
  } else if (!split.empty()) {
    if (static_cast<int64_t>(split.size()) != n_out)
      return ctx.error("'split' {} has {} entries but the node has {} outputs", dims_to_string(split), split.size(),
                       n_out);
    for (int64_t s : split)
      if (s < 0) return ctx.error("'split' {} has a negative size", dims_to_string(split));
    const int64_t total = std::accumulate(split.begin(), split.end(), int64_t{0});
    if (dim.is_static() && total != dim.value())
      return ctx.error("'split' {} adds up to {} but axis {} of the input {} has size {}", dims_to_string(split),
                       total, axis, in.to_string(), dim.value());
    for (int64_t i = 0; i < n_out; ++i) sizes[i] = Dim(split[i]);
  } else if (dim.is_static()) {
    const int64_t d = dim.value();
    if (ctx.opset() >= 18 && ctx.node().has_attr("num_outputs")) {
      const int64_t n = ctx.node().attr_int("num_outputs", n_out);
      if (n != n_out) return ctx.error("num_outputs is {} but the node has {} outputs", n, n_out);
      const int64_t chunk = (d + n - 1) / n;
      for (int64_t i = 0; i < n_out; ++i) sizes[i] = Dim(std::clamp<int64_t>(d - chunk * i, 0, chunk));
    } else {
      if (d % n_out != 0)
        return ctx.error("axis {} of the input {} has size {}, which does not split into {} equal parts", axis,
                         in.to_string(), d, n_out);
      for (int64_t i = 0; i < n_out; ++i) sizes[i] = Dim(d / n_out);
    }
  }
  for (int64_t i = 0; i < n_out; ++i) {
    Shape s = in;
    s[axis] = sizes[i];
    ctx.set_output(i, dt, std::move(s));
  }
  return Status();
}

}  // namespace

void register_split(OpRegistry& r) { r.add({"Split", 1, 2, 1, -1, infer_split}); }

}  // namespace kiln::ops
