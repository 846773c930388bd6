// ConvTranspose: X [N, C, D...], W [C, M/group, k...], optional B [M] -> Y [N, M, out...], where
// out = stride * (in - 1) + output_padding + ((k - 1) * dilation + 1) - pads, or output_shape when given.
#include "ops/conv_pool_attrs.h"
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_conv_transpose(InferContext& ctx) {
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
  if (x.has_rank() && w.has_rank() && x[1].is_static() && w[0].is_static() && x[1].value() != w[0].value())
    return ctx.error("input X has {} channels but weight W {} expects {} (W is [C, M/group, k...])", x[1].value(),
                     w.to_string(), w[0].value());
  if (w.has_rank() && w[0].is_static() && w[0].value() % group != 0)
    return ctx.error("weight W {} has {} input channels, not divisible by group={}", w.to_string(), w[0].value(),
                     group);
  Dim m = w.has_rank() && w[1].is_static() ? Dim(w[1].value() * group) : Dim::unknown();
  if (ctx.has_input(2)) {
    const Shape& b = ctx.input_shape(2);
    if (b.has_rank() && b.rank() != 1) return ctx.error("bias B must be 1-D, got {}", b.to_string());
    if (b.has_rank() && b[0].is_static() && m.is_static() && b[0].value() != m.value())
      return ctx.error("bias B has {} values but the output has {} channels", b[0].value(), m.value());
    if (!m.is_static() && b.has_rank()) m = b[0];
  }
  std::vector<Dim> out{x.has_rank() ? x[0] : Dim::unknown(), m};
  std::vector<int64_t> wk;
  for (size_t i = 0; w.has_rank() && i < n_sp && w[2 + i].is_static(); ++i) wk.push_back(w[2 + i].value());
  if (wk.size() != n_sp) wk.clear();
  if (wk.empty() && !ctx.node().has_attr("kernel_shape")) {
    out.resize(rank, Dim::unknown());
    ctx.set_output(0, dt, Shape(out));
    return Status();
  }
  KILN_ASSIGN_OR_RETURN(Window win, read_window(ctx.node(), n_sp, wk));
  const auto out_pad = ctx.node().attr_ints("output_padding", std::vector<int64_t>(n_sp, 0));
  auto out_shape = ctx.node().attr_ints("output_shape");
  if (out_pad.size() != n_sp)
    return ctx.error("output_padding {} must have {} values", dims_to_string(out_pad), n_sp);
  if (out_shape.size() == rank) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (!out_shape.empty() && out_shape.size() != n_sp)
    return ctx.error("output_shape {} must have {} values", dims_to_string(out_shape), n_sp);
  for (size_t i = 0; i < n_sp; ++i) {
    if (out_pad[i] < 0) return ctx.error("output_padding {} must not be negative", dims_to_string(out_pad));
    if (!out_shape.empty()) {
      if (out_shape[i] < 0) return ctx.error("output_shape {} has a negative dim", dims_to_string(out_shape));
      out.push_back(Dim(out_shape[i]));
      continue;
    }
    const Dim in = x.has_rank() ? x[2 + i] : Dim::unknown();
    if (!in.is_static()) {
      out.push_back(Dim::unknown());
      continue;
    }
    const int64_t o = transpose_output_size(win, i, in.value(), out_pad[i], -1);
    if (o < 0)
      return ctx.error("pads {}+{} along spatial axis {} remove more than the whole output, or the input dim {} "
                       "and strides give a size past int64",
                       win.pad_begin[i], win.pad_end[i], i, in.value());
    out.push_back(Dim(o));
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_conv_transpose(OpRegistry& r) { r.add({"ConvTranspose", 2, 3, 1, 1, infer_conv_transpose}); }

}  // namespace kiln::ops
