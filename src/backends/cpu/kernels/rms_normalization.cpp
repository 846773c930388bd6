// RMSNormalization per row of X viewed as [prod(dims[:axis]), prod(dims[axis:])].
#include <cmath>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

namespace {

Status run_rms_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < 0) axis += rank;
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  const std::vector<int64_t> norm_dims(x.dims().begin() + axis, x.dims().end());
  const int64_t rows = num_elements(std::vector<int64_t>(x.dims().begin(), x.dims().begin() + axis));
  const int64_t d = num_elements(norm_dims);
  const auto scale = broadcast_doubles(ctx.input(1), norm_dims);
  const auto xv = to_doubles(x);
  std::vector<double> y(xv.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = xv.data() + r * d;
    double ms = 0;
    for (int64_t j = 0; j < d; ++j) ms += row[j] * row[j];
    const double inv = 1.0 / std::sqrt(ms / static_cast<double>(d) + eps);
    for (int64_t j = 0; j < d; ++j) y[r * d + j] = row[j] * inv * scale[j];
  }
  write_doubles(ctx.output(0), y);
  return Status();
}

}  // namespace

void register_cpu_rms_normalization(KernelTable& t) {
  t.add({"RMSNormalization", run_rms_norm});
}

}  // namespace kiln::cpu
