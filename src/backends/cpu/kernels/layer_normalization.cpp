// LayerNormalization as in the ONNX function body: two-pass mean and variance per row of X viewed as
// [prod(dims[:axis]), prod(dims[axis:])].
#include <cmath>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

namespace {

Status run_layer_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < 0) axis += rank;
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  const std::vector<int64_t> norm_dims(x.dims().begin() + axis, x.dims().end());
  const int64_t rows = num_elements(std::vector<int64_t>(x.dims().begin(), x.dims().begin() + axis));
  const int64_t d = num_elements(norm_dims);
  const auto scale = broadcast_doubles(ctx.input(1), norm_dims);
  const auto bias =
      ctx.has_input(2) ? broadcast_doubles(ctx.input(2), norm_dims) : std::vector<double>(d, 0.0);
  const auto xv = to_doubles(x);
  std::vector<double> y(xv.size()), mean(rows), inv_std(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = xv.data() + r * d;
    double m = 0;
    for (int64_t j = 0; j < d; ++j) m += row[j];
    m /= static_cast<double>(d);
    double var = 0;
    for (int64_t j = 0; j < d; ++j) var += (row[j] - m) * (row[j] - m);
    var /= static_cast<double>(d);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < d; ++j) y[r * d + j] = (row[j] - m) * inv * scale[j] + bias[j];
    mean[r] = m;
    inv_std[r] = inv;
  }
  write_doubles(ctx.output(0), y);
  if (ctx.has_output(1)) write_doubles(ctx.output(1), mean);
  if (ctx.has_output(2)) write_doubles(ctx.output(2), inv_std);
  return Status();
}

}  // namespace

void register_cpu_layer_normalization(KernelTable& t) {
  t.add({"LayerNormalization", run_layer_norm});
}

}  // namespace kiln::cpu
