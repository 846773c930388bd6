// HannWindow, HammingWindow and BlackmanWindow as cosine sums: w[n] = a0 - a1 cos(2πn/N) + a2 cos(4πn/N), with
// N = size (periodic) or size - 1 (symmetric).
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_window(KernelContext& ctx, double a0, double a1, double a2) {
  KILN_ASSIGN_OR_RETURN(const int64_t size, ctx.scalar_int(0));
  if (size < 0) return ctx.error("size must be >= 0, got {}", size);
  const bool periodic = ctx.node().attr_int("periodic", 1) != 0;
  const double denom = static_cast<double>(periodic ? size : size - 1);
  Tensor& y = ctx.output(0);
  bool ok = dispatch_all(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* py = y.data<T>();
    for (int64_t n = 0; n < size; ++n) {
      // A symmetric window of one sample has no period: it is just the peak.
      const double phase = denom > 0 ? 2.0 * M_PI * static_cast<double>(n) / denom : 0.0;
      const double v = denom > 0 ? a0 - a1 * std::cos(phase) + a2 * std::cos(2.0 * phase) : 1.0;
      py[n] = static_cast<T>(v);
    }
  });
  return ok ? Status() : ctx.unsupported("output dtype {} is not supported", dtype_name(y.dtype()));
}

Status run_hann(KernelContext& ctx) { return run_window(ctx, 0.5, 0.5, 0.0); }
Status run_hamming(KernelContext& ctx) { return run_window(ctx, 25.0 / 46.0, 21.0 / 46.0, 0.0); }
Status run_blackman(KernelContext& ctx) { return run_window(ctx, 0.42, 0.5, 0.08); }

}  // namespace

void register_cpu_window_functions(KernelTable& t) {
  t.add({"HannWindow", run_hann});
  t.add({"HammingWindow", run_hamming});
  t.add({"BlackmanWindow", run_blackman});
}

}  // namespace kiln::cpu
