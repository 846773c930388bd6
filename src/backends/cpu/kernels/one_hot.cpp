#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

// Output [outer, depth, inner] where the indices are [outer, inner]; negative indices count from depth and
// indices outside [-depth, depth) give an all-off row.
Status run_one_hot(KernelContext& ctx) {
  const Tensor& indices = ctx.input(0);
  const Tensor& values = ctx.input(2);
  Tensor& out = ctx.output(0);
  const int64_t out_rank = static_cast<int64_t>(out.rank());
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < 0) axis += out_rank;
  const int64_t depth = out.dim(axis);
  const int64_t outer = dims_product(indices.dims(), 0, axis);
  const int64_t inner = dims_product(indices.dims(), axis, indices.rank());
  bool ok = dispatch_bytes(elem_size(values), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U off = values.data<U>()[0], on = values.data<U>()[1];
    U* dst = out.data<U>();
    for (int64_t i = 0; i < out.numel(); ++i) dst[i] = off;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t in = 0; in < inner; ++in) {
        int64_t v = static_cast<int64_t>(indices.get_as_double(o * inner + in));
        if (v < 0) v += depth;
        if (v >= 0 && v < depth) dst[(o * depth + v) * inner + in] = on;
      }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(values.dtype()));
}

}  // namespace

void register_cpu_one_hot(KernelTable& t) { t.add({"OneHot", run_one_hot, false}); }

}  // namespace kiln::cpu
