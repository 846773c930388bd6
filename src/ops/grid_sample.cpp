// GridSample: X [N, C, D1..Dr] sampled at Grid [N, O1..Or, r] (normalized coordinates, last axis first) ->
// [N, C, O1..Or]. Opset 16 is 2-D with bilinear/bicubic; opset 20 is N-D and names them linear/cubic.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_grid_sample(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt) && !is_integer(dt)) return ctx.error("dtype {} is not supported", dtype_name(dt));
  if (!is_float(ctx.input_dtype(1))) return ctx.error("grid must be float, got {}", dtype_name(ctx.input_dtype(1)));
  const std::string mode = ctx.node().attr_string("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  if (mode != "bilinear" && mode != "linear" && mode != "nearest" && mode != "bicubic" && mode != "cubic")
    return ctx.unsupported("mode '{}' is not supported", mode);
  const std::string pad = ctx.node().attr_string("padding_mode", "zeros");
  if (pad != "zeros" && pad != "border" && pad != "reflection")
    return ctx.unsupported("padding_mode '{}' is not supported", pad);
  const Shape& x = ctx.input_shape(0);
  const Shape& g = ctx.input_shape(1);
  if (x.has_rank() && x.rank() < 3) return ctx.error("input X must be at least 3-D [N, C, spatial...], got {}", x.to_string());
  if (x.has_rank() && g.has_rank()) {
    if (g.rank() != x.rank())
      return ctx.error("grid {} must have the rank of X {} ([N, out spatial..., {}])", g.to_string(), x.to_string(),
                       x.rank() - 2);
    const Dim& last = g[g.rank() - 1];
    if (last.is_static() && last.value() != static_cast<int64_t>(x.rank()) - 2)
      return ctx.error("grid {} must end in {} (one coordinate per spatial axis of X {})", g.to_string(),
                       x.rank() - 2, x.to_string());
    if (x[0].is_static() && g[0].is_static() && x[0].value() != g[0].value())
      return ctx.error("grid {} and X {} have different batch sizes", g.to_string(), x.to_string());
  }
  if (!g.has_rank()) {
    ctx.set_output(0, dt, x.has_rank() ? Shape(std::vector<Dim>(x.rank(), Dim::unknown())) : Shape::unknown_rank());
    return Status();
  }
  if (g.rank() < 3) return ctx.error("grid must be at least 3-D, got {}", g.to_string());
  std::vector<Dim> out{x.has_rank() ? x[0] : g[0], x.has_rank() ? x[1] : Dim::unknown()};
  for (size_t i = 1; i + 1 < g.rank(); ++i) out.push_back(g[i]);
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_grid_sample(OpRegistry& r) { r.add({"GridSample", 2, 2, 1, 1, infer_grid_sample}); }

}  // namespace kiln::ops
