// MaxUnpool: scatters X into zeros at the flat positions in I (as MaxPool's Indices give them). The output is
// output_shape when given, else [N, C, (in - 1) * stride + kernel - pads].
#include "ops/conv_pool_attrs.h"
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_max_unpool(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input X, got {}", dtype_name(dt));
  if (ctx.input_dtype(1) != DType::kI64) return ctx.error("indices I must be int64, got {}", dtype_name(ctx.input_dtype(1)));
  const Shape& x = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  if (x.has_rank() && x.rank() < 3) return ctx.error("input X must be at least 3-D [N, C, spatial...], got {}", x.to_string());
  if (x.has_rank() && idx.has_rank()) {
    bool differ = x.rank() != idx.rank();
    for (size_t i = 0; !differ && i < x.rank(); ++i)
      differ = x[i].is_static() && idx[i].is_static() && x[i].value() != idx[i].value();
    if (differ) return ctx.error("indices I {} must have the shape of X {}", idx.to_string(), x.to_string());
  }
  if (ctx.has_input(2)) {
    std::vector<int64_t> shape;
    if (constant_ints(ctx, 2, shape)) {
      if (x.has_rank() && shape.size() != x.rank())
        return ctx.error("output_shape {} must have rank {} like X {}", dims_to_string(shape), x.rank(), x.to_string());
      for (int64_t d : shape)
        if (d < 0) return ctx.error("output_shape {} has a negative dim", dims_to_string(shape));
      ctx.set_output(0, dt, Shape::from_dims(shape));
    } else if (x.has_rank()) {
      ctx.set_output(0, dt, Shape(std::vector<Dim>(x.rank(), Dim::unknown())));
    } else {
      ctx.set_output(0, dt, Shape::unknown_rank());
    }
    return Status();
  }
  if (!x.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const size_t n_sp = x.rank() - 2;
  KILN_ASSIGN_OR_RETURN(Window w, read_window(ctx.node(), n_sp, {}));
  std::vector<Dim> out{x[0], x[1]};
  for (size_t i = 0; i < n_sp; ++i) {
    if (!x[2 + i].is_static()) {
      out.push_back(Dim::unknown());
      continue;
    }
    const int64_t o = (x[2 + i].value() - 1) * w.strides[i] + w.kernel[i] - w.pad_begin[i] - w.pad_end[i];
    if (o < 0) return ctx.error("pads {}+{} along spatial axis {} leave no output", w.pad_begin[i], w.pad_end[i], i);
    out.push_back(Dim(o));
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_max_unpool(OpRegistry& r) { r.add({"MaxUnpool", 2, 3, 1, 1, infer_max_unpool}); }

}  // namespace kiln::ops
