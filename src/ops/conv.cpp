// Conv (1-D/2-D/3-D and beyond): X [N, C, D...], W [M, C/group, k...], optional B [M] -> Y [N, M, out...].
#include "ops/conv_pool_attrs.h"
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_conv(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input, got {}", dtype_name(dt));
  if (ctx.input_dtype(1) != dt)
    return ctx.error("weight W is {} but input X is {}", dtype_name(ctx.input_dtype(1)), dtype_name(dt));
  if (ctx.has_input(2) && ctx.input_dtype(2) != dt)
    return ctx.error("bias B is {} but input X is {}", dtype_name(ctx.input_dtype(2)), dtype_name(dt));
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  const int64_t group = ctx.node().attr_int("group", 1);
  if (group <= 0) return ctx.error("group must be positive, got {}", group);
  if (!x.has_rank() && !w.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const size_t rank = x.has_rank() ? x.rank() : w.rank();
  if (rank < 3) return ctx.error("input X must be at least 3-D [N, C, spatial...], got {}", x.to_string());
  if (x.has_rank() && w.has_rank() && w.rank() != x.rank())
    return ctx.error("weight W {} must have the same rank as input X {}", w.to_string(), x.to_string());
  const size_t n_sp = rank - 2;
  std::vector<int64_t> wk;
  bool wk_known = w.has_rank();
  for (size_t i = 0; wk_known && i < n_sp; ++i) {
    if (!w[2 + i].is_static()) wk_known = false;
    else wk.push_back(w[2 + i].value());
  }
  if (!wk_known) wk.clear();
  if (!wk_known && !ctx.node().has_attr("kernel_shape")) {
    std::vector<Dim> out(rank, Dim::unknown());
    if (x.has_rank()) out[0] = x[0];
    if (w.has_rank()) out[1] = w[0];
    ctx.set_output(0, dt, Shape(out));
    return Status();
  }
  KILN_ASSIGN_OR_RETURN(Window win, read_window(ctx.node(), n_sp, wk));
  Dim m = w.has_rank() ? w[0] : Dim::unknown();
  if (m.is_static() && m.value() % group != 0)
    return ctx.error("weight W {} has {} output channels, not divisible by group={}", w.to_string(), m.value(), group);
  if (x.has_rank() && w.has_rank() && x[1].is_static() && w[1].is_static() &&
      x[1].value() != w[1].value() * group)
    return ctx.error("input X has {} channels but weight W expects {} (group={})", x[1].value(),
                     w[1].value() * group, group);
  if (ctx.has_input(2)) {
    const Shape& b = ctx.input_shape(2);
    if (b.has_rank() && b.rank() != 1) return ctx.error("bias B must be 1-D, got {}", b.to_string());
    if (b.has_rank() && b[0].is_static() && m.is_static() && b[0].value() != m.value())
      return ctx.error("bias B has {} values but weight W has {} output channels", b[0].value(), m.value());
    if (!m.is_static() && b.has_rank()) m = b[0];
  }
  std::vector<Dim> out{x.has_rank() ? x[0] : Dim::unknown(), m};
  for (size_t i = 0; i < n_sp; ++i) {
    Dim in = x.has_rank() ? x[2 + i] : Dim::unknown();
    if (in.is_static() && window_output_size(win, i, in.value()) < 0)
      return ctx.error("input X {} is too small along spatial axis {} for kernel {} (dilations {}, pads {}+{})",
                       x.to_string(), i, win.kernel[i], win.dilations[i], win.pad_begin[i], win.pad_end[i]);
    out.push_back(window_output_dim(win, i, in));
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_conv(OpRegistry& r) { r.add({"Conv", 2, 3, 1, 1, infer_conv}); }

}  // namespace kiln::ops
