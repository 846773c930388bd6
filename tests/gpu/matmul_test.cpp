#include "gpu/gpu_harness.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

std::vector<std::string> str_dims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

void check_matmul(DType dt, std::vector<int64_t> a, std::vector<int64_t> b, uint64_t seed) {
  ModelBuilder m;
  m.input("a", dt, str_dims(a)).input("b", dt, str_dims(b)).node("MatMul", {"a", "b"}, {"y"}).output("y");
  // K up to ~1000 with f16 inputs: relative error grows with K, hence the looser bound for reduced precision.
  std::optional<gputest::Tolerance> tol;
  if (dt == DType::kF32) tol = gputest::Tolerance{1e-4, 1e-4};
  if (dt == DType::kF16) tol = gputest::Tolerance{5e-3, 5e-3};
  if (dt == DType::kBF16) tol = gputest::Tolerance{2e-2, 2e-2};
  gputest::expect_gpu_matches_cpu(m, {{"a", gputest::random_tensor(dt, a, seed)}, {"b", gputest::random_tensor(dt, b, seed + 1)}}, 1, tol);
}

TEST(GpuMatMul, OddShapesAllFloatDtypes) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    check_matmul(dt, {1, 1}, {1, 1}, 1);
    check_matmul(dt, {3, 7}, {7, 5}, 2);
    check_matmul(dt, {127, 65}, {65, 33}, 3);
    check_matmul(dt, {7}, {7, 3}, 4);          // 1-D A
    check_matmul(dt, {4, 7}, {7}, 5);          // 1-D B
    check_matmul(dt, {2, 3, 5, 8}, {2, 3, 8, 6}, 6);   // equal batches
    check_matmul(dt, {2, 3, 5, 8}, {8, 6}, 7);         // shared B (folded into one tall matmul)
    check_matmul(dt, {5, 8}, {4, 8, 6}, 8);            // shared A (stride 0)
    check_matmul(dt, {2, 1, 5, 8}, {1, 3, 8, 6}, 9);   // general broadcast
    check_matmul(dt, {1, 768}, {768, 1000}, 10);
  }
}

TEST(GpuMatMul, EmptyDims) {
  KILN_REQUIRE_GPU();
  check_matmul(DType::kF32, {0, 4}, {4, 3}, 1);
}

void check_gemm(DType dt, int64_t m, int64_t k, int64_t n, bool ta, bool tb, std::vector<int64_t> c_dims, float alpha,
                float beta) {
  ModelBuilder b;
  std::vector<int64_t> a_dims = ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k};
  std::vector<int64_t> b_dims = tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n};
  b.input("a", dt, str_dims(a_dims)).input("b", dt, str_dims(b_dims));
  std::vector<std::string> ins = {"a", "b"};
  std::map<std::string, Tensor> inputs = {{"a", gputest::random_tensor(dt, a_dims, 11)}, {"b", gputest::random_tensor(dt, b_dims, 12)}};
  if (!c_dims.empty() || c_dims.size() == 0) {
    b.input("c", dt, str_dims(c_dims));
    ins.push_back("c");
    inputs["c"] = gputest::random_tensor(dt, c_dims, 13);
  }
  b.node("Gemm", ins, {"y"}).attr("transA", int64_t{ta}).attr("transB", int64_t{tb}).attr("alpha", alpha).attr("beta", beta).output("y");
  std::optional<gputest::Tolerance> tol;
  if (dt == DType::kF32) tol = gputest::Tolerance{1e-4, 1e-4};
  gputest::expect_gpu_matches_cpu(b, inputs, 1, tol);
}

TEST(GpuGemm, TransposesBiasAndScales) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    check_gemm(dt, 3, 7, 5, false, false, {5}, 1.f, 1.f);        // fused bias epilogue
    check_gemm(dt, 3, 7, 5, true, true, {3, 5}, 0.5f, 2.f);      // full C, beta scaling
    check_gemm(dt, 33, 17, 9, false, true, {33, 1}, 1.f, 1.f);   // column broadcast
    check_gemm(dt, 1, 128, 10, false, true, {1, 10}, 1.f, 1.f);  // classifier head
    check_gemm(dt, 4, 4, 4, false, false, {}, 1.f, 0.5f);        // scalar C
  }
}

}  // namespace
}  // namespace kiln
