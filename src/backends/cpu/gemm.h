// One row-major GEMM entry point for CPU kernels: C = alpha * op(A) * op(B) + beta * C.
#pragma once
#include <cstdint>

namespace kiln::cpu {

void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

template <class T>
void gemm_naive(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const T* a, int64_t lda,
                const T* b, int64_t ldb, double beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        double av = static_cast<double>(trans_a ? a[p * lda + i] : a[i * lda + p]);
        double bv = static_cast<double>(trans_b ? b[j * ldb + p] : b[p * ldb + j]);
        acc += av * bv;
      }
      double prev = beta == 0.0 ? 0.0 : beta * static_cast<double>(c[i * ldc + j]);
      c[i * ldc + j] = static_cast<T>(alpha * acc + prev);
    }
}

}  // namespace kiln::cpu
