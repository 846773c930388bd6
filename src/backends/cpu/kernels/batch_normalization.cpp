// BatchNormalization. X is viewed as [N, P, S]: P parameter slots (channels, or every activation when
// spatial=0) and S positions sharing one slot.
#include <cmath>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

namespace {

bool any_extra_output(const KernelContext& ctx) {
  for (size_t i = 1; i < ctx.num_outputs(); ++i)
    if (ctx.has_output(i)) return true;
  return false;
}

Status run_batch_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const ir::Node& node = ctx.node();
  const bool training = ctx.opset() >= 14 ? node.attr_int("training_mode", 0) != 0 : any_extra_output(ctx);
  const bool per_act = ctx.opset() < 9 && node.attr_int("spatial", 1) == 0;
  const double eps = node.attr_float("epsilon", 1e-5f);
  const double momentum = node.attr_float("momentum", 0.9f);
  const int64_t n = x.dim(0);
  const int64_t p =
      per_act ? num_elements(std::vector<int64_t>(x.dims().begin() + 1, x.dims().end())) : x.dim(1);
  const int64_t s = n * p == 0 ? 0 : x.numel() / (n * p);
  const auto xv = to_doubles(x);
  const auto scale = to_doubles(ctx.input(1)), bias = to_doubles(ctx.input(2));
  auto mean = to_doubles(ctx.input(3)), var = to_doubles(ctx.input(4));
  std::vector<double> batch_mean(p, 0.0), batch_var(p, 0.0);
  if (training) {
    const double count = static_cast<double>(n * s);
    for (int64_t c = 0; c < p; ++c) {
      double m = 0, v = 0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t k = 0; k < s; ++k) m += xv[(b * p + c) * s + k];
      m /= count;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t k = 0; k < s; ++k) v += (xv[(b * p + c) * s + k] - m) * (xv[(b * p + c) * s + k] - m);
      batch_mean[c] = m;
      batch_var[c] = v / count;
    }
  }
  const auto& use_mean = training ? batch_mean : mean;
  const auto& use_var = training ? batch_var : var;
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t c = 0; c < p; ++c) {
      const double inv = 1.0 / std::sqrt(use_var[c] + eps);
      for (int64_t k = 0; k < s; ++k) {
        const int64_t i = (b * p + c) * s + k;
        y[i] = (xv[i] - use_mean[c]) * inv * scale[c] + bias[c];
      }
    }
  write_doubles(ctx.output(0), y);
  if (training) {
    std::vector<double> run_mean(p), run_var(p);
    for (int64_t c = 0; c < p; ++c) {
      run_mean[c] = mean[c] * momentum + batch_mean[c] * (1.0 - momentum);
      run_var[c] = var[c] * momentum + batch_var[c] * (1.0 - momentum);
    }
    const std::vector<double>* outs[] = {&run_mean, &run_var, &batch_mean, &batch_var};
    for (size_t i = 1; i < ctx.num_outputs() && i <= 4; ++i)
      if (ctx.has_output(i)) write_doubles(ctx.output(i), *outs[i - 1]);
  }
  return Status();
}

}  // namespace

void register_cpu_batch_normalization(KernelTable& t) {
  t.add({"BatchNormalization", run_batch_norm});
}

}  // namespace kiln::cpu
