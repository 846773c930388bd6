// Gemm: Y = alpha * op(A) * op(B) + beta * C, with C unidirectionally broadcast to [M, N] (optional from 11).
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

bool gemm_dtype_ok(DType t) {
  switch (t) {
    case DType::kF16: case DType::kBF16: case DType::kF32: case DType::kF64:
    case DType::kI32: case DType::kI64: case DType::kU32: case DType::kU64:
      return true;
    default:
      return false;
  }
}

// Two dims that must be equal: an error only when both are static and differ.
bool dims_conflict(const Dim& a, const Dim& b) { return a.is_static() && b.is_static() && a.value() != b.value(); }

Status infer_gemm(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!gemm_dtype_ok(dt)) return ctx.error("dtype {} is not supported (float, double, int32/64, uint32/64)", dtype_name(dt));
  for (size_t i = 1; i < 3; ++i)
    if (ctx.has_input(i) && ctx.input_dtype(i) != dt)
      return ctx.error("input {} is {} but A is {}; all inputs must have the same dtype", i,
                       dtype_name(ctx.input_dtype(i)), dtype_name(dt));
  if (ctx.opset() < 11 && !ctx.has_input(2)) return ctx.error("input C is required before opset 11");
  const bool ta = ctx.node().attr_int("transA", 0) != 0, tb = ctx.node().attr_int("transB", 0) != 0;
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  if (a.has_rank() && a.rank() != 2) return ctx.error("A must be 2-D, got {}", a.to_string());
  if (b.has_rank() && b.rank() != 2) return ctx.error("B must be 2-D, got {}", b.to_string());
  Dim m, n, ka, kb;
  if (a.has_rank()) m = a[ta ? 1 : 0], ka = a[ta ? 0 : 1];
  if (b.has_rank()) kb = b[tb ? 1 : 0], n = b[tb ? 0 : 1];
  if (dims_conflict(ka, kb))
    return ctx.error("inner dims differ: op(A) is {} (transA={}) with K={} but op(B) from {} (transB={}) has K={}",
                     a.to_string(), ta ? 1 : 0, ka.value(), b.to_string(), tb ? 1 : 0, kb.value());
  if (ctx.has_input(2)) {
    const Shape& c = ctx.input_shape(2);
    if (c.has_rank()) {
      if (c.rank() > 2) return ctx.error("C must have rank 0, 1 or 2, got {}", c.to_string());
      // C broadcasts one way only: each of its dims is 1 or equals the output's.
      const Dim out[2] = {m, n};
      for (size_t i = 0; i < c.rank(); ++i) {
        const Dim& cd = c[i];
        const Dim& od = out[2 - c.rank() + i];
        if (cd.is_static() && cd.value() == 1) continue;
        if (dims_conflict(cd, od))
          return ctx.error("C {} cannot be broadcast to the output [{},{}]", c.to_string(), m.to_string(),
                           n.to_string());
        // The output dim may be unknown while C pins it.
        if (!od.is_static() && cd.is_static()) (i + 2 - c.rank() == 0 ? m : n) = cd;
      }
    }
  }
  ctx.set_output(0, dt, Shape(std::vector<Dim>{m, n}));
  return Status();
}

}  // namespace

void register_gemm(OpRegistry& r) { r.add({"Gemm", 2, 3, 1, 1, infer_gemm}); }

}  // namespace kiln::ops
