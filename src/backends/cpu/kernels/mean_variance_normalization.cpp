// MeanVarianceNormalization. Like the ONNX function body, epsilon 1e-9 is added to the standard deviation.
#include <cmath>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

namespace {

Status run_mvn(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<bool> reduced(rank, false), kept(rank, true);
  for (int64_t a : ctx.node().attr_ints("axes", {0, 2, 3})) {
    reduced[a < 0 ? a + rank : a] = true;
    kept[a < 0 ? a + rank : a] = false;
  }
  const auto outer = offsets_over(x.dims(), kept);
  const auto inner = offsets_over(x.dims(), reduced);
  const auto xv = to_doubles(x);
  std::vector<double> y(xv.size());
  const double count = static_cast<double>(inner.size());
  for (int64_t base : outer) {
    double m = 0, v = 0;
    for (int64_t o : inner) m += xv[base + o];
    m /= count;
    for (int64_t o : inner) v += (xv[base + o] - m) * (xv[base + o] - m);
    const double denom = std::sqrt(v / count) + 1e-9;
    for (int64_t o : inner) y[base + o] = (xv[base + o] - m) / denom;
  }
  write_doubles(ctx.output(0), y);
  return Status();
}

}  // namespace

void register_cpu_mean_variance_normalization(KernelTable& t) {
  t.add({"MeanVarianceNormalization", run_mvn});
}

}  // namespace kiln::cpu
