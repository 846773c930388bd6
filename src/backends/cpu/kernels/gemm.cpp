#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

// Integer Gemm accumulates exactly in 64 bits; alpha and beta then scale the sums.
template <class T>
void gemm_int(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const T* a, const T* b, double beta,
              T* c) {
  using Acc = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      Acc acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += static_cast<Acc>(ta ? a[p * lda + i] : a[i * lda + p]) *
               static_cast<Acc>(tb ? b[j * ldb + p] : b[p * ldb + j]);
      T& out = c[i * n + j];
      const T prev = beta == 0.0 ? T(0) : out;
      if (alpha == 1.0 && (beta == 1.0 || beta == 0.0))
        out = static_cast<T>(acc + static_cast<Acc>(prev));
      else
        out = static_cast<T>(alpha * static_cast<double>(acc) + beta * static_cast<double>(prev));
    }
}

Status run_gemm(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  const bool ta = ctx.node().attr_int("transA", 0) != 0, tb = ctx.node().attr_int("transB", 0) != 0;
  const double alpha = ctx.node().attr_float("alpha", 1.f), beta = ctx.node().attr_float("beta", 1.f);
  const int64_t m = y.dim(0), n = y.dim(1), k = ta ? a.dim(0) : a.dim(1);
  const bool with_c = ctx.has_input(2) && beta != 0.0;
  bool ok = dispatch_all(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* py = y.data<T>();
    if (with_c) {
      // Broadcast C into Y, then accumulate the product on top with beta.
      const Tensor& c = ctx.input(2);
      const auto sc = broadcast_strides(c.dims(), y.dims());
      const T* pc = c.data<T>();
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) py[i * n + j] = pc[i * sc[0] + j * sc[1]];
    }
    const double eff_beta = with_c ? beta : 0.0;
    if constexpr (std::is_same_v<T, float>) {
      gemm_f32(ta, tb, m, n, k, static_cast<float>(alpha), a.data<float>(), ta ? m : k, b.data<float>(),
               tb ? k : n, static_cast<float>(eff_beta), py, n);
    } else if constexpr (std::is_same_v<T, double>) {
      gemm_naive<T>(ta, tb, m, n, k, alpha, a.data<T>(), ta ? m : k, b.data<T>(), tb ? k : n, eff_beta, py, n);
    } else {
      gemm_int<T>(ta, tb, m, n, k, alpha, a.data<T>(), b.data<T>(), eff_beta, py);
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(a.dtype()));
}

}  // namespace

void register_cpu_gemm(KernelTable& t) { t.add({"Gemm", run_gemm}); }

}  // namespace kiln::cpu
