#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

// The output arrives zero-filled (f32 when the dtype is f16/bf16); set the diagonal.
Status run_eye_like(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const int64_t k = ctx.node().attr_int("k", 0);
  const int64_t rows = out.dim(0), cols = out.dim(1);
  bool ok = dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* po = out.data<T>();
    for (int64_t i = 0; i < rows; ++i)
      if (i + k >= 0 && i + k < cols) po[i * cols + i + k] = T(1);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(out.dtype()));
}

}  // namespace

void register_cpu_eye_like(KernelTable& t) { t.add({"EyeLike", run_eye_like}); }

}  // namespace kiln::cpu
