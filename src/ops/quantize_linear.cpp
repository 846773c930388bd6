// QuantizeLinear and DequantizeLinear (per tensor, per axis and, from opset 21, blocked) and DynamicQuantizeLinear.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

bool is_quantized(DType t) { return t == DType::kU8 || t == DType::kI8 || t == DType::kU16 || t == DType::kI16; }

bool is_scalar_like(const Shape& s) {
  return s.has_rank() && (s.rank() == 0 || (s.rank() == 1 && s[0].is_static() && s[0].value() == 1));
}

// A scale (or zero point) is a scalar (per tensor), a 1-D tensor as long as x's axis dim (per axis) or, with
// block_size, x's shape with the axis dim counted in blocks.
Status check_param_shape(InferContext& ctx, const Shape& x, size_t input, const char* what) {
  const Shape& s = ctx.input_shape(input);
  const int64_t block = ctx.node().attr_int("block_size", 0);
  if (block < 0) return ctx.error("block_size must be >= 0, got {}", block);
  if (!s.has_rank() || !x.has_rank()) return Status();
  if (block == 0 && is_scalar_like(s)) return Status();
  if (ctx.opset() < 13 && block == 0)
    return ctx.error("{} must be a scalar before opset 13 (per-tensor only), got {}", what, s.to_string());
  KILN_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(ctx, ctx.node().attr_int("axis", 1), x.rank()));
  if (block == 0) {
    if (s.rank() != 1)
      return ctx.error("{} {} must be a scalar or a 1-D per-axis tensor for x {}", what, s.to_string(), x.to_string());
    if (s[0].is_static() && x[ax].is_static() && s[0].value() != x[ax].value())
      return ctx.error("per-axis {} has {} elements but x {} has {} along axis {}", what, s[0].value(),
                       x.to_string(), x[ax].value(), ax);
    return Status();
  }
  if (s.rank() != x.rank())
    return ctx.error("blocked {} {} must have the rank of x {}", what, s.to_string(), x.to_string());
  for (size_t i = 0; i < x.rank(); ++i) {
    if (!s[i].is_static() || !x[i].is_static()) continue;
    const int64_t want = static_cast<int64_t>(i) == ax ? (x[i].value() + block - 1) / block : x[i].value();
    if (s[i].value() != want)
      return ctx.error("blocked {} {} does not fit x {} with block_size {} on axis {} (dim {} should be {})", what,
                       s.to_string(), x.to_string(), block, ax, i, want);
  }
  return Status();
}

Status check_zero_point(InferContext& ctx, size_t scale_in, size_t zp_in) {
  if (!ctx.has_input(zp_in)) return Status();
  const Shape& s = ctx.input_shape(scale_in);
  const Shape& z = ctx.input_shape(zp_in);
  if (s.has_rank() && z.has_rank() && !(is_scalar_like(s) && is_scalar_like(z)) && !(s == z))
    return ctx.error("zero point {} and scale {} must have the same shape", z.to_string(), s.to_string());
  return Status();
}

Status infer_quantize(InferContext& ctx) {
  const DType x = ctx.input_dtype(0);
  if (!is_float(x) && x != DType::kI32)
    return ctx.error("x must be float or int32, got {}", dtype_name(x));
  if (!is_float(ctx.input_dtype(1))) return ctx.error("y_scale must be float, got {}", dtype_name(ctx.input_dtype(1)));
  DType out = DType::kU8;
  if (ctx.has_input(2)) {
    out = ctx.input_dtype(2);
  } else if (int64_t dt = ctx.node().attr_int("output_dtype", 0); dt != 0) {
    auto d = dtype_from_onnx(static_cast<int32_t>(dt));
    if (!d) return ctx.unsupported("output_dtype {} is not supported", dt);
    out = *d;
  }
  if (!is_quantized(out))
    return ctx.unsupported("quantizing to {} is not supported (u8, i8, u16, i16 are)", dtype_name(out));
  KILN_RETURN_IF_ERROR(check_param_shape(ctx, ctx.input_shape(0), 1, "y_scale"));
  KILN_RETURN_IF_ERROR(check_zero_point(ctx, 1, 2));
  ctx.set_output(0, out, ctx.input_shape(0));
  return Status();
}

Status infer_dequantize(InferContext& ctx) {
  const DType x = ctx.input_dtype(0);
  if (!is_quantized(x) && x != DType::kI32)
    return ctx.unsupported("dequantizing {} is not supported (u8, i8, u16, i16, i32 are)", dtype_name(x));
  if (ctx.has_input(2) && ctx.input_dtype(2) != x)
    return ctx.error("x_zero_point is {} but x is {}; they must match", dtype_name(ctx.input_dtype(2)),
                     dtype_name(x));
  const DType scale = ctx.input_dtype(1);
  if (!is_float(scale)) return ctx.error("x_scale must be float, got {}", dtype_name(scale));
  KILN_RETURN_IF_ERROR(check_param_shape(ctx, ctx.input_shape(0), 1, "x_scale"));
  KILN_RETURN_IF_ERROR(check_zero_point(ctx, 1, 2));
  ctx.set_output(0, scale, ctx.input_shape(0));
  return Status();
}

Status infer_dynamic_quantize(InferContext& ctx) {
  if (!is_float(ctx.input_dtype(0))) return ctx.error("x must be float, got {}", dtype_name(ctx.input_dtype(0)));
  ctx.set_output(0, DType::kU8, ctx.input_shape(0));
  ctx.set_output(1, DType::kF32, Shape::scalar());
  ctx.set_output(2, DType::kU8, Shape::scalar());
  return Status();
}

}  // namespace

void register_quantize_linear(OpRegistry& r) {
  r.add({"QuantizeLinear", 2, 3, 1, 1, infer_quantize});
  r.add({"DequantizeLinear", 2, 3, 1, 1, infer_dequantize});
  r.add({"DynamicQuantizeLinear", 1, 1, 3, 3, infer_dynamic_quantize});
}

}  // namespace kiln::ops
