// LRN: y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta, the window being
// [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to the channels.
#include <cmath>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

namespace {

Status run_lrn(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const ir::Node& node = ctx.node();
  const double alpha = node.attr_float("alpha", 1e-4f), beta = node.attr_float("beta", 0.75f);
  const double bias = node.attr_float("bias", 1.f);
  const int64_t size = node.attr_int("size", 1);
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  const int64_t n = x.dim(0), c = x.dim(1);
  const int64_t s = n * c == 0 ? 0 : x.numel() / (n * c);
  const auto xv = to_doubles(x);
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < s; ++k) {
        double sq = 0;
        for (int64_t i = std::max<int64_t>(0, ch - before); i <= std::min(c - 1, ch + after); ++i) {
          double v = xv[(b * c + i) * s + k];
          sq += v * v;
        }
        const int64_t at = (b * c + ch) * s + k;
        y[at] = xv[at] / std::pow(bias + alpha / static_cast<double>(size) * sq, beta);
      }
  write_doubles(ctx.output(0), y);
  return Status();
}

}  // namespace

void register_cpu_lrn(KernelTable& t) {
  t.add({"LRN", run_lrn});
}

}  // namespace kiln::cpu
