// Unsqueeze: inserts size-1 dims at the listed axes of the output (attribute before opset 13, input after).
#include <set>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_unsqueeze(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DType dt = ctx.input_dtype(0);
  std::vector<int64_t> axes;
  if (ctx.opset() < 13) {
    if (!ctx.node().has_attr("axes")) return ctx.error("attribute 'axes' is required");
    axes = ctx.node().attr_ints("axes");
  } else {
    if (!ctx.has_input(1)) return ctx.error("input 'axes' is required from opset 13");
    if (!constant_ints(ctx, 1, axes)) {
      const Shape& as = ctx.input_shape(1);
      if (in.has_rank() && as.has_rank() && as.rank() == 1 && as[0].is_static() &&
          as[0].value() > kMaxTensorRank - static_cast<int64_t>(in.rank()))
        return ctx.error("{} axes added to rank {} make more than the {} dims kiln supports", as[0].value(),
                         in.rank(), kMaxTensorRank);
      if (in.has_rank() && as.has_rank() && as.rank() == 1 && as[0].is_static())
        ctx.set_output(0, dt, Shape(std::vector<Dim>(in.rank() + as[0].value(), Dim::unknown())));
      else
        ctx.set_output(0, dt, Shape::unknown_rank());
      return Status();
    }
  }
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t out_rank = static_cast<int64_t>(in.rank() + axes.size());
  std::set<int64_t> ones;
  for (int64_t a : axes) {
    if (a < -out_rank || a >= out_rank)
      return ctx.error("axis {} is out of range for the output rank {} (input {} plus {} new dims)", a, out_rank,
                       in.to_string(), axes.size());
    const int64_t n = a < 0 ? a + out_rank : a;
    if (!ones.insert(n).second) return ctx.error("axes {} name axis {} twice", dims_to_string(axes), n);
  }
  std::vector<Dim> out;
  size_t next = 0;
  for (int64_t i = 0; i < out_rank; ++i) out.push_back(ones.count(i) ? Dim(1) : in[next++]);
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_unsqueeze(OpRegistry& r) { r.add({"Unsqueeze", 1, 2, 1, 1, infer_unsqueeze}); }

}  // namespace kiln::ops
