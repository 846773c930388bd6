// Compress: keeps the slices along 'axis' (or elements of the flattened input) whose condition is true; the
// condition may be shorter than the axis. The output size depends on the condition's values.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_compress(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DType dt = ctx.input_dtype(0);
  const Shape& cs = ctx.input_shape(1);
  if (ctx.input_dtype(1) != DType::kBool)
    return ctx.error("the condition must be bool, got {}", dtype_name(ctx.input_dtype(1)));
  if (cs.has_rank() && cs.rank() != 1) return ctx.error("the condition must be 1-D, got {}", cs.to_string());
  const bool has_axis = ctx.node().has_attr("axis");
  Dim len = has_axis ? Dim::unknown() : Dim(1);
  std::vector<Dim> out;
  int64_t axis = 0;
  if (has_axis) {
    if (!in.has_rank()) {
      ctx.set_output(0, dt, Shape::unknown_rank());
      return Status();
    }
    KILN_ASSIGN_OR_RETURN(axis, normalize_axis(ctx, ctx.node().attr_int("axis", 0), in.rank()));
    if (in.rank() == 0) return ctx.error("cannot compress a scalar along an axis");
    len = in[axis];
    out = in.dims();
  } else {
    out = {Dim::unknown()};
    if (in.has_rank()) {
      for (const auto& d : in.dims()) {
        KILN_ASSIGN_OR_RETURN(len, ctx.mul_dims(len, d));
      }
    } else {
      len = Dim::unknown();
    }
  }
  int64_t count = -1;
  if (const Tensor* c = ctx.input_value(1)) {
    if (len.is_static() && c->numel() > len.value())
      return ctx.error("the condition has {} entries but the compressed axis has only {}", c->numel(), len.value());
    count = 0;
    for (int64_t i = 0; i < c->numel(); ++i) count += c->get_as_int(i) != 0;
  }
  out[has_axis ? axis : 0] = count >= 0 ? Dim(count) : Dim::unknown();
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_compress(OpRegistry& r) { r.add({"Compress", 2, 2, 1, 1, infer_compress}); }

}  // namespace kiln::ops
