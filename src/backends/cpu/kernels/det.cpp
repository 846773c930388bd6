// Det by LU decomposition with partial pivoting, in double.
#include <cmath>
#include <utility>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/norm_util.h"

namespace kiln::cpu {

namespace {

double determinant(std::vector<double> a, int64_t m) {
  double det = 1.0;
  for (int64_t col = 0; col < m; ++col) {
    int64_t pivot = col;
    for (int64_t r = col + 1; r < m; ++r)
      if (std::fabs(a[r * m + col]) > std::fabs(a[pivot * m + col])) pivot = r;
    if (a[pivot * m + col] == 0.0) return 0.0;
    if (pivot != col) {
      for (int64_t j = 0; j < m; ++j) std::swap(a[pivot * m + j], a[col * m + j]);
      det = -det;
    }
    const double p = a[col * m + col];
    det *= p;
    for (int64_t r = col + 1; r < m; ++r) {
      const double f = a[r * m + col] / p;
      for (int64_t j = col; j < m; ++j) a[r * m + j] -= f * a[col * m + j];
    }
  }
  return det;
}

Status run_det(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t m = x.dim(x.rank() - 1);
  const auto xv = to_doubles(x);
  const int64_t batch = ctx.output(0).numel();
  std::vector<double> out(batch);
  for (int64_t b = 0; b < batch; ++b)
    out[b] = determinant(std::vector<double>(xv.begin() + b * m * m, xv.begin() + (b + 1) * m * m), m);
  write_doubles(ctx.output(0), out);
  return Status();
}

}  // namespace

void register_cpu_det(KernelTable& t) {
  t.add({"Det", run_det});
}

}  // namespace kiln::cpu
