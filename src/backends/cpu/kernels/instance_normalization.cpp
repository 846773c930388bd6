// InstanceNormalization over X viewed as [N, C, S].
#include <cmath>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

namespace {

Status run_instance_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  const int64_t n = x.dim(0), c = x.dim(1);
  const int64_t s = n * c == 0 ? 0 : x.numel() / (n * c);
  const auto xv = to_doubles(x);
  const auto scale = to_doubles(ctx.input(1)), bias = to_doubles(ctx.input(2));
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t base = (b * c + ch) * s;
      double m = 0, v = 0;
      for (int64_t k = 0; k < s; ++k) m += xv[base + k];
      m /= static_cast<double>(s);
      for (int64_t k = 0; k < s; ++k) v += (xv[base + k] - m) * (xv[base + k] - m);
      v /= static_cast<double>(s);
      const double inv = 1.0 / std::sqrt(v + eps);
      for (int64_t k = 0; k < s; ++k) y[base + k] = (xv[base + k] - m) * inv * scale[ch] + bias[ch];
    }
  write_doubles(ctx.output(0), y);
  return Status();
}

}  // namespace

void register_cpu_instance_normalization(KernelTable& t) {
  t.add({"InstanceNormalization", run_instance_norm});
}

}  // namespace kiln::cpu
