// Times every cuBLASLt heuristic candidate (up to 64) and cublasGemmEx for row-major f16 GEMMs
// D[m,n] = A[m,k] · op(B), the way kiln's lt_matmul lays them out (column-major view Dᵀ = op(B)ᵀ · Aᵀ).
// Shows whether kiln's 8-candidate timing misses a faster algorithm, and what a padded leading dimension of D
// buys. Build and run on the GPU machine:
//   nvcc -O2 -std=c++17 -arch=sm_90 bench/cublaslt_probe.cu -lcublasLt -lcublas -o /tmp/probe && /tmp/probe
// Each line: m n k trans_b ldd. Without arguments it probes GPT-2's lm_head and BERT/ViT-sized GEMMs.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK(x)                                                                \
  do {                                                                          \
    auto e_ = (x);                                                              \
    if (static_cast<int>(e_) != 0) {                                            \
      std::printf("error %d at %s:%d: %s\n", static_cast<int>(e_), __FILE__, __LINE__, #x); \
      std::exit(1);                                                             \
    }                                                                           \
  } while (0)

struct Shape {
  long m, n, k;
  bool trans_b;
  long ldd;  // D's row pitch (>= n)
};

template <class F>
static float time_ms(cudaStream_t s, int runs, F&& fn) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  fn();
  fn();
  cudaEventRecord(a, s);
  for (int i = 0; i < runs; ++i) fn();
  cudaEventRecord(b, s);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / runs;
}

int main(int argc, char** argv) {
  std::vector<Shape> shapes;
  for (int i = 1; i + 4 < argc; i += 5)
    shapes.push_back({atol(argv[i]), atol(argv[i + 1]), atol(argv[i + 2]), atoi(argv[i + 3]) != 0, atol(argv[i + 4])});
  if (shapes.empty())
    shapes = {{16384, 50257, 768, true, 50257}, {16384, 50257, 768, true, 50264}, {16384, 50264, 768, true, 50264},
              {16384, 50256, 768, true, 50257}, {512, 50256, 768, true, 50257},
              {512, 50257, 768, true, 50257},   {512, 50264, 768, true, 50264},   {4096, 768, 768, false, 768},
              {4096, 3072, 768, false, 3072},   {4096, 768, 3072, false, 768},    {4096, 2304, 768, false, 2304},
              {6304, 2304, 768, false, 2304},   {6304, 3072, 768, false, 3072},   {6304, 768, 3072, false, 768}};
  cublasLtHandle_t lt;
  cublasHandle_t blas;
  CHECK(cublasLtCreate(&lt));
  CHECK(cublasCreate(&blas));
  cudaStream_t s;
  cudaStreamCreate(&s);
  cublasSetStream(blas, s);
  const size_t ws_bytes = 32u << 20;
  void* ws;
  CHECK(cudaMalloc(&ws, ws_bytes));
  for (const Shape& sh : shapes) {
    const size_t a_n = sh.m * sh.k, b_n = sh.n * sh.k, d_n = sh.m * sh.ldd;
    __half *A, *B, *D;
    CHECK(cudaMalloc(&A, a_n * 2));
    CHECK(cudaMalloc(&B, b_n * 2));
    CHECK(cudaMalloc(&D, d_n * 2));
    cudaMemset(A, 0x3c, a_n * 2);
    cudaMemset(B, 0x1c, b_n * 2);
    const double tflop = 2.0 * sh.m * sh.n * sh.k / 1e12;
    std::printf("== m=%ld n=%ld k=%ld trans_b=%d ldd=%ld (%.3f TFLOP)\n", sh.m, sh.n, sh.k, sh.trans_b, sh.ldd, tflop);

    cublasLtMatmulDesc_t op;
    CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = sh.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
    CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    cublasLtMatrixLayout_t la, lb, lc;
    const long b_rows = sh.trans_b ? sh.k : sh.n, b_cols = sh.trans_b ? sh.n : sh.k;
    CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, b_rows, b_cols, b_rows));
    CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, sh.k, sh.m, sh.k));
    CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16F, sh.n, sh.m, sh.ldd));
    cublasLtMatmulPreference_t pref;
    CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                               sizeof(ws_bytes)));
    std::vector<cublasLtMatmulHeuristicResult_t> heur(64);
    int found = 0;
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 64, heur.data(), &found));
    const float one = 1.f, zero = 0.f;
    struct Row {
      int index, id, tile, stages, splitk;
      float ms;
    };
    std::vector<Row> rows;
    for (int i = 0; i < found; ++i) {
      auto run = [&] {
        cublasLtMatmul(lt, op, &one, B, la, A, lb, &zero, D, lc, D, lc, &heur[i].algo, ws, heur[i].workspaceSize, s);
      };
      if (cublasLtMatmul(lt, op, &one, B, la, A, lb, &zero, D, lc, D, lc, &heur[i].algo, ws, heur[i].workspaceSize,
                         s) != CUBLAS_STATUS_SUCCESS)
        continue;
      Row r{i, 0, 0, 0, 0, time_ms(s, 5, run)};
      size_t got;
      cublasLtMatmulAlgoConfigGetAttribute(&heur[i].algo, CUBLASLT_ALGO_CONFIG_ID, &r.id, sizeof(r.id), &got);
      cublasLtMatmulAlgoConfigGetAttribute(&heur[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &r.tile, sizeof(r.tile), &got);
      cublasLtMatmulAlgoConfigGetAttribute(&heur[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &r.stages, sizeof(r.stages),
                                           &got);
      cublasLtMatmulAlgoConfigGetAttribute(&heur[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &r.splitk,
                                           sizeof(r.splitk), &got);
      rows.push_back(r);
    }
    std::vector<Row> by_time = rows;
    std::sort(by_time.begin(), by_time.end(), [](const Row& a, const Row& b) { return a.ms < b.ms; });
    float best8 = 1e30f;
    for (const Row& r : rows)
      if (r.index < 8) best8 = std::min(best8, r.ms);
    std::printf("  %d candidates; first: %.3f ms; best of first 8: %.3f ms (%.0f TFLOPS)\n", found,
                rows.empty() ? 0.f : rows[0].ms, best8, tflop / (best8 / 1e3));
    for (size_t i = 0; i < by_time.size() && i < 4; ++i)
      std::printf("  #%d algo=%d tile=%d stages=%d splitK=%d: %.3f ms (%.0f TFLOPS)\n", by_time[i].index, by_time[i].id,
                  by_time[i].tile, by_time[i].stages, by_time[i].splitk, by_time[i].ms, tflop / (by_time[i].ms / 1e3));
    // cublasGemmEx (what torch's plain matmul calls): same column-major problem.
    auto gemm = [&] {
      cublasGemmEx(blas, ta, tb, sh.n, sh.m, sh.k, &one, B, CUDA_R_16F, b_rows, A, CUDA_R_16F, sh.k, &zero, D,
                   CUDA_R_16F, sh.ldd, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    const float g = time_ms(s, 5, gemm);
    std::printf("  cublasGemmEx: %.3f ms (%.0f TFLOPS)\n", g, tflop / (g / 1e3));
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
    cudaFree(A);
    cudaFree(B);
    cudaFree(D);
  }
  return 0;
}
