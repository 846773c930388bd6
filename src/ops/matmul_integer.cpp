// MatMulInteger and QLinearMatMul: MatMul shapes (numpy batch broadcasting) over 8-bit operands.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

bool is_8bit(DType t) { return t == DType::kU8 || t == DType::kI8; }

Result<Shape> matmul_shape(const InferContext& ctx, Shape a, Shape b) {
  if (!a.has_rank() || !b.has_rank()) return Shape::unknown_rank();
  const std::string a_text = a.to_string(), b_text = b.to_string();
  if (a.rank() == 0 || b.rank() == 0)
    return ctx.error("operands must be at least 1-D, got {} and {}", a.to_string(), b.to_string());
  const bool a_vec = a.rank() == 1, b_vec = b.rank() == 1;
  if (a_vec) a = Shape(std::vector<Dim>{Dim(1), a[0]});
  if (b_vec) b = Shape(std::vector<Dim>{b[0], Dim(1)});
  const Dim& ka = a[a.rank() - 1];
  const Dim& kb = b[b.rank() - 2];
  if (ka.is_static() && kb.is_static() && ka.value() != kb.value())
    return ctx.error("inner dims differ: A {} has K={} but B {} has K={}", a_text, ka.value(), b_text,
                     kb.value());
  Shape batch_a(std::vector<Dim>(a.dims().begin(), a.dims().end() - 2));
  Shape batch_b(std::vector<Dim>(b.dims().begin(), b.dims().end() - 2));
  KILN_ASSIGN_OR_RETURN(Shape batch, broadcast_shapes(ctx, {batch_a, batch_b}));
  std::vector<Dim> out = batch.dims();
  if (!a_vec) out.push_back(a[a.rank() - 2]);
  if (!b_vec) out.push_back(b[b.rank() - 1]);
  return Shape(out);
}

// A 1-D quantization parameter must be as long as A's rows (row side) or B's columns (column side).
Status check_param(const InferContext& ctx, size_t param, size_t operand, bool rows, const char* what) {
  if (!ctx.has_input(param)) return Status();
  const Shape& p = ctx.input_shape(param);
  const Shape& x = ctx.input_shape(operand);
  if (!p.has_rank() || !x.has_rank() || p.rank() != 1 || !p[0].is_static() || p[0].value() == 1) return Status();
  if (x.rank() < 2)
    return ctx.error("{} {} must be a scalar for a 1-D operand {}", what, p.to_string(), x.to_string());
  const Dim& d = rows ? x[x.rank() - 2] : x[x.rank() - 1];
  if (d.is_static() && d.value() != p[0].value())
    return ctx.error("{} has {} elements but the operand {} has {} {}", what, p[0].value(), x.to_string(), d.value(),
                     rows ? "rows" : "columns");
  return Status();
}

Status check_operand(const InferContext& ctx, size_t x, size_t zp, const char* name) {
  if (!is_8bit(ctx.input_dtype(x)))
    return ctx.error("{} must be u8 or i8, got {}", name, dtype_name(ctx.input_dtype(x)));
  if (ctx.has_input(zp) && ctx.input_dtype(zp) != ctx.input_dtype(x))
    return ctx.error("the zero point of {} is {} but {} is {}; they must match", name,
                     dtype_name(ctx.input_dtype(zp)), name, dtype_name(ctx.input_dtype(x)));
  return Status();
}

Status infer_matmul_integer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_operand(ctx, 0, 2, "A"));
  KILN_RETURN_IF_ERROR(check_operand(ctx, 1, 3, "B"));
  KILN_RETURN_IF_ERROR(check_param(ctx, 2, 0, true, "a_zero_point"));
  KILN_RETURN_IF_ERROR(check_param(ctx, 3, 1, false, "b_zero_point"));
  KILN_ASSIGN_OR_RETURN(Shape s, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(1)));
  ctx.set_output(0, DType::kI32, std::move(s));
  return Status();
}

// Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point.
Status infer_qlinear_matmul(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_operand(ctx, 0, 2, "a"));
  KILN_RETURN_IF_ERROR(check_operand(ctx, 3, 5, "b"));
  KILN_RETURN_IF_ERROR(check_param(ctx, 1, 0, true, "a_scale"));
  KILN_RETURN_IF_ERROR(check_param(ctx, 2, 0, true, "a_zero_point"));
  KILN_RETURN_IF_ERROR(check_param(ctx, 4, 3, false, "b_scale"));
  KILN_RETURN_IF_ERROR(check_param(ctx, 5, 3, false, "b_zero_point"));
  for (size_t i : {6, 7}) {
    const Shape& s = ctx.input_shape(i);
    if (s.has_rank() && s.rank() > 0 && !(s.rank() == 1 && s[0].is_static() && s[0].value() == 1))
      return ctx.unsupported("{} must be a scalar (per-tensor), got {}", i == 6 ? "y_scale" : "y_zero_point",
                             s.to_string());
  }
  const DType out = ctx.input_dtype(7);
  if (!is_8bit(out)) return ctx.error("y_zero_point must be u8 or i8, got {}", dtype_name(out));
  KILN_ASSIGN_OR_RETURN(Shape s, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(3)));
  ctx.set_output(0, out, std::move(s));
  return Status();
}

}  // namespace

void register_matmul_integer(OpRegistry& r) {
  r.add({"MatMulInteger", 2, 4, 1, 1, infer_matmul_integer});
  r.add({"QLinearMatMul", 8, 8, 1, 1, infer_qlinear_matmul});
}

}  // namespace kiln::ops
