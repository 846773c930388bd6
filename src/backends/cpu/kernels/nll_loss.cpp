// NegativeLogLikelihoodLoss: loss = -input[n, target, d...] * weight[target]; ignored targets count zero
// weight, and 'mean' divides by the total weight of the counted elements.
#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/loss.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

Status negative_log_likelihood(KernelContext& ctx, const std::vector<double>& log_prob) {
  const Tensor& in = ctx.input(0);
  const Tensor& target = ctx.input(1);
  const int64_t n = in.dim(0), c = in.dim(1);
  const int64_t d = num_elements(std::vector<int64_t>(in.dims().begin() + 2, in.dims().end()));
  const bool has_ignore = ctx.node().has_attr("ignore_index");
  const int64_t ignore = ctx.node().attr_int("ignore_index", 0);
  const std::string reduction = ctx.node().attr_string("reduction", "mean");
  const std::vector<double> weight = ctx.has_input(2) ? to_doubles(ctx.input(2)) : std::vector<double>();
  std::vector<double> loss(n * d);
  double total = 0, weight_sum = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < d; ++k) {
      const int64_t t = target.get_as_int(b * d + k);
      if (has_ignore && t == ignore) continue;  // loss 0, weight 0
      if (t < 0 || t >= c)
        return ctx.error("target value {} at flat index {} is not a class in [0, {})", t, b * d + k, c);
      const double w = weight.empty() ? 1.0 : weight[t];
      loss[b * d + k] = -log_prob[(b * c + t) * d + k] * w;
      total += loss[b * d + k];
      weight_sum += w;
    }
  if (reduction == "none")
    write_doubles(ctx.output(0), loss);
  else if (reduction == "sum")
    write_doubles(ctx.output(0), {total});
  else
    write_doubles(ctx.output(0), {total / weight_sum});
  return Status();
}

namespace {

Status run_nll(KernelContext& ctx) {
  return negative_log_likelihood(ctx, to_doubles(ctx.input(0)));
}

}  // namespace

void register_cpu_nll_loss(KernelTable& t) {
  t.add({"NegativeLogLikelihoodLoss", run_nll});
}

}  // namespace kiln::cpu
