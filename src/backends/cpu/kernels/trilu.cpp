#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

// The output starts zero-filled (all-zero bytes are 0 in every dtype); copy the kept triangle.
Status run_trilu(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const bool upper = ctx.node().attr_int("upper", 1) != 0;
  int64_t k = 0;
  if (ctx.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(k, ctx.scalar_int(1));
  }
  const int64_t rows = in.dim(in.rank() - 2), cols = in.dim(in.rank() - 1);
  const int64_t mats = dims_product(in.dims(), 0, in.rank() - 2);
  bool ok = dispatch_bytes(elem_size(in), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = in.data<U>();
    U* dst = out.data<U>();
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t at = (m * rows + i) * cols + j;
          if (upper ? j - i >= k : j - i <= k) dst[at] = src[at];
        }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
}

}  // namespace

void register_cpu_trilu(KernelTable& t) { t.add({"Trilu", run_trilu, false}); }

}  // namespace kiln::cpu
