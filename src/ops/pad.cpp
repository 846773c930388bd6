// Pad: constant, reflect, edge or wrap padding. Pads and the constant are attributes before opset 11 and inputs
// after; opset 18 adds an optional 'axes' input.
#include "ops/pad.h"

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_pad(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DType dt = ctx.input_dtype(0);
  const std::string mode = ctx.node().attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    return ctx.unsupported("mode '{}' is not supported (constant, reflect, edge, wrap)", mode);
  if (ctx.opset() >= 11) {
    if (!ctx.has_input(1)) return ctx.error("input 'pads' is required from opset 11");
    if (ctx.has_input(2) && ctx.input_dtype(2) != dt)
      return ctx.error("constant_value is {} but the data is {}; both must have the same dtype",
                       dtype_name(ctx.input_dtype(2)), dtype_name(dt));
  }
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  const bool known = ctx.opset() < 11 || (ctx.input_value(1) && (!ctx.has_input(3) || ctx.input_value(3)));
  if (!known) {
    ctx.set_output(0, dt, Shape(std::vector<Dim>(rank, Dim::unknown())));
    return Status();
  }
  std::vector<int64_t> begin, end;
  const Tensor* pads = ctx.opset() >= 11 ? ctx.input_value(1) : nullptr;
  const Tensor* axes = ctx.has_input(3) ? ctx.input_value(3) : nullptr;
  std::string err = pad_amounts(ctx.node(), ctx.opset(), pads, axes, rank, begin, end);
  if (!err.empty()) return ctx.error("{} (input {})", err, in.to_string());
  std::vector<Dim> out = in.dims();
  for (int64_t a = 0; a < rank; ++a) {
    const Dim& d = in[a];
    if (!d.is_static()) {
      if (begin[a] != 0 || end[a] != 0) out[a] = Dim::unknown();
      continue;
    }
    // In 128 bits: pads come from the model and may be near INT64_MAX.
    const __int128 size128 = static_cast<__int128>(d.value()) + begin[a] + end[a];
    if (size128 > INT64_MAX)
      return ctx.error("pads {} and {} on axis {} of the input {} give a size past int64", begin[a], end[a], a,
                       in.to_string());
    const int64_t size = static_cast<int64_t>(size128);
    if (size < 0)
      return ctx.error("pads {} and {} on axis {} of the input {} give a negative size", begin[a], end[a], a,
                       in.to_string());
    if (mode != "constant" && d.value() == 0 && (begin[a] > 0 || end[a] > 0))
      return ctx.error("cannot {} pad axis {} of the input {}: it is empty", mode, a, in.to_string());
    out[a] = Dim(size);
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_pad(OpRegistry& r) { r.add({"Pad", 1, 4, 1, 1, infer_pad}); }

}  // namespace kiln::ops
