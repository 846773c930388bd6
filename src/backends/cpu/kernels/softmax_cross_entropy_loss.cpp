// SoftmaxCrossEntropyLoss: log-softmax over the class axis 1, then the shared negative log-likelihood.
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/loss.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

namespace {

Status run_sce(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const int64_t n = in.dim(0), c = in.dim(1);
  const int64_t d = num_elements(std::vector<int64_t>(in.dims().begin() + 2, in.dims().end()));
  auto lp = to_doubles(in);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < d; ++k) {
      double m = -std::numeric_limits<double>::infinity(), s = 0;
      for (int64_t j = 0; j < c; ++j) m = std::max(m, lp[(b * c + j) * d + k]);
      for (int64_t j = 0; j < c; ++j) s += std::exp(lp[(b * c + j) * d + k] - m);
      const double log_s = std::log(s);
      for (int64_t j = 0; j < c; ++j) lp[(b * c + j) * d + k] -= m + log_s;
    }
  KILN_RETURN_IF_ERROR(negative_log_likelihood(ctx, lp));
  if (ctx.has_output(1)) write_doubles(ctx.output(1), lp);
  return Status();
}

}  // namespace

void register_cpu_softmax_cross_entropy_loss(KernelTable& t) {
  t.add({"SoftmaxCrossEntropyLoss", run_sce});
}

}  // namespace kiln::cpu
