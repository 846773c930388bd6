// Transpose: output dim i is input dim perm[i]; perm defaults to reversing the dims.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_transpose(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const bool has_perm = ctx.node().has_attr("perm");
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (!in.has_rank()) {
    ctx.set_output(0, ctx.input_dtype(0),
                   has_perm ? Shape(std::vector<Dim>(perm.size(), Dim::unknown())) : Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  if (!has_perm)
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  if (static_cast<int64_t>(perm.size()) != rank)
    return ctx.error("perm {} has {} entries but the input {} has rank {}", dims_to_string(perm), perm.size(),
                     in.to_string(), rank);
  std::vector<bool> seen(rank, false);
  std::vector<Dim> out;
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[p])
      return ctx.error("perm {} is not a permutation of 0..{}", dims_to_string(perm), rank - 1);
    seen[p] = true;
    out.push_back(in[p]);
  }
  ctx.set_output(0, ctx.input_dtype(0), Shape(out));
  return Status();
}

}  // namespace

void register_transpose(OpRegistry& r) { r.add({"Transpose", 1, 1, 1, 1, infer_transpose}); }

}  // namespace kiln::ops
