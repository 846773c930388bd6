// GatherND: the last indices dim k addresses data[b:b+k] per batch (b = batch_dims);
// out = indices.shape[:-1] + data.shape[b+k:].
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_gather_nd(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const DType dt = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != DType::kI64) return ctx.error("indices must be int64, got {}", dtype_name(ctx.input_dtype(1)));
  const int64_t b = ctx.node().attr_int("batch_dims", 0);
  if (!data.has_rank() || !idx.has_rank() || idx.rank() == 0 || !idx[idx.rank() - 1].is_static()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t r = static_cast<int64_t>(data.rank()), q = static_cast<int64_t>(idx.rank());
  const int64_t k = idx[q - 1].value();
  if (b < 0 || b >= std::min(q, r))
    return ctx.error("batch_dims {} must be in [0, {}) for data {} and indices {}", b, std::min(q, r),
                     data.to_string(), idx.to_string());
  if (k < 1 || k > r - b)
    return ctx.error("the last indices dim is {} but must be in [1, {}] for data {} with batch_dims {}", k, r - b,
                     data.to_string(), b);
  for (int64_t i = 0; i < b; ++i)
    if (data[i].is_static() && idx[i].is_static() && data[i].value() != idx[i].value())
      return ctx.error("batch dim {} differs: data {} vs indices {}", i, data.to_string(), idx.to_string());
  std::vector<Dim> out(idx.dims().begin(), idx.dims().end() - 1);
  out.insert(out.end(), data.dims().begin() + b + k, data.dims().end());
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_gather_nd(OpRegistry& r) { r.add({"GatherND", 2, 2, 1, 1, infer_gather_nd}); }

}  // namespace kiln::ops
