// HannWindow, HammingWindow and BlackmanWindow: a 1-D window of `size` values, periodic or symmetric.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Result<DType> output_datatype(const InferContext& ctx) {
  const int64_t code = ctx.node().attr_int("output_datatype", 1);
  auto dt = dtype_from_onnx(static_cast<int32_t>(code));
  if (!dt || *dt == DType::kString || *dt == DType::kUndefined)
    return ctx.unsupported("output_datatype {} is not a supported numeric type", code);
  return *dt;
}

Status infer_window(InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kI32 && ctx.input_dtype(0) != DType::kI64)
    return ctx.error("size must be i32 or i64, got {}", dtype_name(ctx.input_dtype(0)));
  const Shape& s = ctx.input_shape(0);
  if (s.has_rank() && s.is_static() && num_elements(s.static_dims()) != 1)
    return ctx.error("size must be a scalar, got shape {}", s.to_string());
  const int64_t periodic = ctx.node().attr_int("periodic", 1);
  if (periodic != 0 && periodic != 1) return ctx.error("periodic must be 0 or 1, got {}", periodic);
  KILN_ASSIGN_OR_RETURN(DType dt, output_datatype(ctx));
  std::vector<int64_t> size;
  if (constant_ints(ctx, 0, size) && !size.empty()) {
    if (size[0] < 0) return ctx.error("size must be >= 0, got {}", size[0]);
    ctx.set_output(0, dt, Shape::from_dims({size[0]}));
  } else {
    ctx.set_output(0, dt, Shape(std::vector<Dim>{Dim::unknown()}));
  }
  return Status();
}

}  // namespace

void register_window_functions(OpRegistry& r) {
  for (auto name : {"HannWindow", "HammingWindow", "BlackmanWindow"}) r.add({name, 1, 1, 1, 1, infer_window});
}

}  // namespace kiln::ops
