// MaxPool (with optional Indices), AveragePool, LpPool and their Global* forms: X [N, C, D...] -> [N, C, out...].
#include "ops/conv_pool_attrs.h"
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status check_input(const InferContext& ctx, bool int8_ok) {
  const DType dt = ctx.input_dtype(0);
  if (is_float(dt) || (int8_ok && (dt == DType::kI8 || dt == DType::kU8))) return Status();
  return ctx.error("dtype {} is not supported ({})", dtype_name(dt),
                   int8_ok ? "float, double, float16, int8 or uint8" : "float types only");
}

Status infer_pool(InferContext& ctx) {
  const bool is_max = ctx.node().op_type == "MaxPool";
  KILN_RETURN_IF_ERROR(check_input(ctx, is_max));
  const DType dt = ctx.input_dtype(0);
  const Shape& x = ctx.input_shape(0);
  if (!x.has_rank()) {
    // kernel_shape still tells the rank.
    const auto k = ctx.node().attr_ints("kernel_shape");
    Shape out = k.empty() ? Shape::unknown_rank() : Shape(std::vector<Dim>(k.size() + 2, Dim::unknown()));
    ctx.set_output(0, dt, out);
    if (ctx.has_output(1)) ctx.set_output(1, DType::kI64, out);
    return Status();
  }
  if (x.rank() < 3) return ctx.error("input X must be at least 3-D [N, C, spatial...], got {}", x.to_string());
  if (!is_max && ctx.has_output(1)) return ctx.error("has only one output");
  const size_t n_sp = x.rank() - 2;
  KILN_ASSIGN_OR_RETURN(Window win, read_window(ctx.node(), n_sp, {}));
  if (ctx.node().op_type == "LpPool" && ctx.node().attr_float("p", 2.f) <= 0)
    return ctx.error("p must be positive, got {}", ctx.node().attr_float("p", 2.f));
  if (is_max) {
    const int64_t order = ctx.node().attr_int("storage_order", 0);
    if (order != 0 && order != 1) return ctx.error("storage_order must be 0 or 1, got {}", order);
  }
  std::vector<Dim> out{x[0], x[1]};
  for (size_t i = 0; i < n_sp; ++i) {
    const Dim& in = x[2 + i];
    if (in.is_static()) {
      Window w = win;
      const int64_t o = window_output_size(w, i, in.value());
      if (o < 0)
        return ctx.error("input X {} is smaller than the window along spatial axis {} (kernel {}, dilation {}, "
                         "pads {}+{})",
                         x.to_string(), i, win.kernel[i], win.dilations[i], win.pad_begin[i], win.pad_end[i]);
      // A window lying wholly in the padding has nothing to pool.
      if (w.pad_begin[i] >= win.effective_kernel(i) || w.pad_end[i] >= win.effective_kernel(i))
        return ctx.error("pads {}+{} along spatial axis {} must be smaller than the kernel extent {}",
                         w.pad_begin[i], w.pad_end[i], i, win.effective_kernel(i));
    }
    out.push_back(window_output_dim(win, i, in));
  }
  ctx.set_output(0, dt, Shape(out));
  if (ctx.has_output(1)) ctx.set_output(1, DType::kI64, Shape(out));
  return Status();
}

Status infer_global_pool(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input(ctx, false));
  const Shape& x = ctx.input_shape(0);
  if (!x.has_rank()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::unknown_rank());
    return Status();
  }
  if (x.rank() < 3) return ctx.error("input X must be at least 3-D [N, C, spatial...], got {}", x.to_string());
  std::vector<Dim> out(x.rank(), Dim(1));
  out[0] = x[0];
  out[1] = x[1];
  ctx.set_output(0, ctx.input_dtype(0), Shape(out));
  return Status();
}

}  // namespace

void register_pool(OpRegistry& r) {
  r.add({"MaxPool", 1, 1, 1, 2, infer_pool});
  r.add({"AveragePool", 1, 1, 1, 1, infer_pool});
  r.add({"LpPool", 1, 1, 1, 1, infer_pool});
  r.add({"GlobalAveragePool", 1, 1, 1, 1, infer_global_pool});
  r.add({"GlobalMaxPool", 1, 1, 1, 1, infer_global_pool});
  r.add({"GlobalLpPool", 1, 1, 1, 1, infer_global_pool});
}

}  // namespace kiln::ops
