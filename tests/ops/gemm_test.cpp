#include <gtest/gtest.h>

#include "ops/nn_test_util.h"

namespace kiln {
namespace {

using namespace nn_test;

// Y = alpha * op(A) * op(B) + beta * C, straight from the definition.
std::vector<double> gemm_ref(const Tensor& a, const Tensor& b, const Tensor* c, bool ta, bool tb, double alpha,
                             double beta) {
  const int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1), n = tb ? b.dim(0) : b.dim(1);
  std::vector<double> y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += at(a, ta ? p * m + i : i * k + p) * at(b, tb ? j * k + p : p * n + j);
      double cv = 0;
      if (c) {
        const auto& cd = c->dims();
        int64_t ci = 0;
        if (cd.size() == 1) ci = cd[0] == 1 ? 0 : j;
        if (cd.size() == 2) ci = (cd[0] == 1 ? 0 : i) * cd[1] + (cd[1] == 1 ? 0 : j);
        cv = at(*c, ci);
      }
      y[i * n + j] = alpha * s + beta * cv;
    }
  return y;
}

TEST(NnGemm, TransposesScalesAndBroadcastsC) {
  struct Case { bool ta, tb; std::vector<int64_t> c; };
  for (const Case& cs : {Case{false, false, {5}}, Case{true, false, {3, 1}}, Case{false, true, {1}},
                         Case{true, true, {3, 5}}, Case{false, false, {}}}) {
    Tensor a = random_f32(cs.ta ? std::vector<int64_t>{7, 3} : std::vector<int64_t>{3, 7}, 1);
    Tensor b = random_f32(cs.tb ? std::vector<int64_t>{5, 7} : std::vector<int64_t>{7, 5}, 2);
    Tensor c = random_f32(cs.c, 3);
    ModelBuilder mb(13);
    mb.input("a", DType::kF32, dim_strs(a.dims())).input("b", DType::kF32, dim_strs(b.dims()))
        .input("c", DType::kF32, dim_strs(c.dims()))
        .node("Gemm", {"a", "b", "c"}, {"y"}).attr("transA", int64_t(cs.ta)).attr("transB", int64_t(cs.tb))
        .attr("alpha", 0.5f).attr("beta", -2.f).output("y");
    expect_near(run_y(mb, {{"a", a}, {"b", b}, {"c", c}}), gemm_ref(a, b, &c, cs.ta, cs.tb, 0.5, -2.0));
  }
}

TEST(NnGemm, NoBiasDoubleAndInt) {
  Tensor a = random_f32({1, 4}, 4), b = random_f32({4, 2}, 5);
  ModelBuilder mb(13);
  mb.input("a", DType::kF32, {"1", "4"}).input("b", DType::kF32, {"4", "2"}).node("Gemm", {"a", "b"}, {"y"}).output("y");
  expect_near(run_y(mb, {{"a", a}, {"b", b}}), gemm_ref(a, b, nullptr, false, false, 1, 1));

  Tensor ai = Tensor::from_vector<int32_t>(DType::kI32, {2, 2}, {1, 2, 3, 4});
  Tensor bi = Tensor::from_vector<int32_t>(DType::kI32, {2, 2}, {5, 6, 7, 8});
  Tensor ci = Tensor::from_vector<int32_t>(DType::kI32, {2}, {100, 200});
  ModelBuilder mi(13);
  mi.input("a", DType::kI32, {"2", "2"}).input("b", DType::kI32, {"2", "2"}).input("c", DType::kI32, {"2"})
      .node("Gemm", {"a", "b", "c"}, {"y"}).output("y");
  expect_near(run_y(mi, {{"a", ai}, {"b", bi}, {"c", ci}}), {119, 222, 143, 250});
}

TEST(NnGemm, EmptyK) {
  ModelBuilder mb(13);
  mb.input("a", DType::kF32, {"2", "0"}).input("b", DType::kF32, {"0", "3"}).input("c", DType::kF32, {"3"})
      .node("Gemm", {"a", "b", "c"}, {"y"}).output("y");
  Tensor c = f32_tensor({3}, {1, 2, 3});
  expect_near(run_y(mb, {{"a", Tensor(DType::kF32, {2, 0})}, {"b", Tensor(DType::kF32, {0, 3})}, {"c", c}}),
              {1, 2, 3, 1, 2, 3});
}

TEST(NnGemm, SymbolicBatchShape) {
  ModelBuilder mb(13);
  mb.input("a", DType::kF32, {"batch", "16"}).initializer("w", random_f32({10, 16}, 6))
      .initializer("bias", random_f32({10}, 7)).node("Gemm", {"a", "w", "bias"}, {"y"}).attr("transB", int64_t(1))
      .output("y");
  EXPECT_EQ(built_shape(mb), "[batch,10]");
}

TEST(NnGemm, BuildErrors) {
  ModelBuilder k(13);
  k.input("a", DType::kF32, {"2", "3"}).input("b", DType::kF32, {"4", "5"}).node("Gemm", {"a", "b"}, {"y"}, "fc")
      .output("y");
  std::string e = build_error(k);
  EXPECT_NE(e.find("inner dims differ"), std::string::npos) << e;
  EXPECT_NE(e.find("'fc'"), std::string::npos) << e;

  ModelBuilder c(13);
  c.input("a", DType::kF32, {"2", "3"}).input("b", DType::kF32, {"3", "4"}).input("c", DType::kF32, {"3"})
      .node("Gemm", {"a", "b", "c"}, {"y"}).output("y");
  e = build_error(c);
  EXPECT_NE(e.find("C [3] cannot be broadcast to the output [2,4]"), std::string::npos) << e;
}

}  // namespace
}  // namespace kiln
