#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

// Inference sized the output; value i is start + i * delta, computed in the output type.
Status run_range(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  bool ok = dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T start = ctx.input(0).data<T>()[0];
    const T delta = ctx.input(2).data<T>()[0];
    T* po = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) po[i] = static_cast<T>(start + static_cast<T>(i) * delta);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(out.dtype()));
}

}  // namespace

void register_cpu_range(KernelTable& t) { t.add({"Range", run_range}); }

}  // namespace kiln::cpu
