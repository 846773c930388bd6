// MatMul with numpy semantics: 1-D operands are promoted and the added dim removed; batch dims broadcast.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_matmul(InferContext& ctx) {
  if (ctx.input_dtype(0) != ctx.input_dtype(1))
    return ctx.error("A is {} but B is {}; both must have the same dtype", dtype_name(ctx.input_dtype(0)),
                     dtype_name(ctx.input_dtype(1)));
  Shape a = ctx.input_shape(0), b = ctx.input_shape(1);
  if (!a.has_rank() || !b.has_rank()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::unknown_rank());
    return Status();
  }
  if (a.rank() == 0 || b.rank() == 0) return ctx.error("operands must be at least 1-D, got {} and {}", a.to_string(), b.to_string());
  const bool a_vec = a.rank() == 1, b_vec = b.rank() == 1;
  if (a_vec) a = Shape(std::vector<Dim>{Dim(1), a[0]});
  if (b_vec) b = Shape(std::vector<Dim>{b[0], Dim(1)});
  const Dim& k_a = a[a.rank() - 1];
  const Dim& k_b = b[b.rank() - 2];
  if (k_a.is_static() && k_b.is_static() && k_a.value() != k_b.value())
    return ctx.error("inner dims differ: A {} has K={} but B {} has K={}", ctx.input_shape(0).to_string(),
                     k_a.value(), ctx.input_shape(1).to_string(), k_b.value());
  Shape batch_a(std::vector<Dim>(a.dims().begin(), a.dims().end() - 2));
  Shape batch_b(std::vector<Dim>(b.dims().begin(), b.dims().end() - 2));
  KILN_ASSIGN_OR_RETURN(Shape batch, broadcast_shapes(ctx, {batch_a, batch_b}));
  std::vector<Dim> out = batch.dims();
  if (!a_vec) out.push_back(a[a.rank() - 2]);
  if (!b_vec) out.push_back(b[b.rank() - 1]);
  ctx.set_output(0, ctx.input_dtype(0), Shape(out));
  return Status();
}

}  // namespace

void register_matmul(OpRegistry& r) { r.add({"MatMul", 2, 2, 1, 1, infer_matmul}); }

}  // namespace kiln::ops
