#include <gtest/gtest.h>

#include "ops/nn_test_util.h"

namespace kiln {
namespace {

using namespace nn_test;

Tensor iota(std::vector<int64_t> dims) {
  Tensor t(DType::kF32, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

TEST(NnPool, MaxPoolWithIndicesPadsAndCeil) {
  // 1x1x3x4, kernel 2x2, stride 2, pad end 1 on H, ceil_mode: 2x2 windows.
  ModelBuilder mb(12);
  mb.input("x", DType::kF32, {"1", "1", "3", "4"}).node("MaxPool", {"x"}, {"y", "i"})
      .attr("kernel_shape", std::vector<int64_t>{2, 2}).attr("strides", std::vector<int64_t>{2, 2})
      .attr("ceil_mode", int64_t(1)).output("y").output("i");
  Tensor x = random_f32({1, 1, 3, 4}, 5);
  auto r = run(mb, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor& y = r->at("y");
  const Tensor& idx = r->at("i");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 2, 2}));
  for (int oi = 0; oi < 2; ++oi)
    for (int oj = 0; oj < 2; ++oj) {
      double best = -1e9;
      int64_t arg = -1;
      for (int i = oi * 2; i < std::min(3, oi * 2 + 2); ++i)
        for (int j = oj * 2; j < oj * 2 + 2; ++j)
          if (at(x, i * 4 + j) > best) best = at(x, i * 4 + j), arg = i * 4 + j;
      EXPECT_FLOAT_EQ(at(y, oi * 2 + oj), best);
      EXPECT_EQ(idx.data<int64_t>()[oi * 2 + oj], arg);
    }
}

TEST(NnPool, MaxPoolInt8AndDilation1D) {
  ModelBuilder mb(12);
  mb.input("x", DType::kI8, {"1", "1", "7"}).node("MaxPool", {"x"}, {"y"})
      .attr("kernel_shape", std::vector<int64_t>{2}).attr("dilations", std::vector<int64_t>{3}).output("y");
  Tensor x = Tensor::from_vector<int8_t>(DType::kI8, {1, 1, 7}, {-5, 3, -1, 7, -8, 2, 0});
  // windows {0,3} {1,4} {2,5} {3,6}
  expect_near(run_y(mb, {{"x", x}}), {7, 3, 2, 7});
}

TEST(NnPool, AveragePoolCountIncludePad) {
  for (int64_t include : {0, 1}) {
    ModelBuilder mb(11);
    mb.input("x", DType::kF32, {"1", "1", "3", "3"}).node("AveragePool", {"x"}, {"y"})
        .attr("kernel_shape", std::vector<int64_t>{2, 2}).attr("pads", std::vector<int64_t>{1, 1, 0, 0})
        .attr("strides", std::vector<int64_t>{2, 2}).attr("count_include_pad", include).output("y");
    Tensor y = run_y(mb, {{"x", iota({1, 1, 3, 3})}});
    // windows: {0} {1,2} {3,6} {4,5,7,8}
    if (include) expect_near(y, {0 / 4.0, 3 / 4.0, 9 / 4.0, 24 / 4.0});
    else expect_near(y, {0, 1.5, 4.5, 6});
  }
}

TEST(NnPool, LpPoolAndGlobals) {
  ModelBuilder lp(18);
  lp.input("x", DType::kF32, {"1", "2", "3"}).node("LpPool", {"x"}, {"y"})
      .attr("kernel_shape", std::vector<int64_t>{2}).attr("p", int64_t(3)).output("y");
  Tensor x = f32_tensor({1, 2, 3}, {1, -2, 3, 0, 4, -1});
  expect_near(run_y(lp, {{"x", x}}), {std::cbrt(9.0), std::cbrt(35.0), std::cbrt(64.0), std::cbrt(65.0)});

  const std::vector<std::pair<std::string, std::vector<double>>> cases = {
      {"GlobalAveragePool", {2.0 / 3, 1}}, {"GlobalMaxPool", {3, 4}}, {"GlobalLpPool", {std::sqrt(14.0), std::sqrt(17.0)}}};
  for (const auto& [op, want] : cases) {
    ModelBuilder g(17);
    g.input("x", DType::kF32, {"batch", "2", "3"}).node(op, {"x"}, {"y"}).output("y");
    EXPECT_EQ(built_shape(g), "[batch,2,1]") << op;
    Tensor y = run_y(g, {{"x", x}});
    EXPECT_EQ(y.dims(), (std::vector<int64_t>{1, 2, 1})) << op;
    expect_near(y, want);
  }
}

TEST(NnPool, SymbolicAndSameShapes) {
  ModelBuilder mb(12);
  mb.input("x", DType::kF32, {"N", "64", "112", "W"}).node("MaxPool", {"x"}, {"y"})
      .attr("kernel_shape", std::vector<int64_t>{3, 3}).attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1}).output("y");
  EXPECT_EQ(built_shape(mb), "[N,64,56,?]");
  ModelBuilder s(12);
  s.input("x", DType::kF32, {"N", "3", "H", "7"}).node("AveragePool", {"x"}, {"y"})
      .attr("kernel_shape", std::vector<int64_t>{3, 3}).attr("auto_pad", std::string("SAME_LOWER")).output("y");
  EXPECT_EQ(built_shape(s), "[N,3,H,7]");
}

TEST(NnPool, BuildErrors) {
  ModelBuilder k(12);
  k.input("x", DType::kF32, {"1", "1", "4", "4"}).node("MaxPool", {"x"}, {"y"}, "pool").output("y");
  std::string e = build_error(k);
  EXPECT_NE(e.find("node 'pool' (MaxPool): attribute 'kernel_shape' is required"), std::string::npos) << e;
  ModelBuilder r(12);
  r.input("x", DType::kF32, {"1", "1", "4", "4"}).node("AveragePool", {"x"}, {"y"})
      .attr("kernel_shape", std::vector<int64_t>{2}).output("y");
  e = build_error(r);
  EXPECT_NE(e.find("kernel_shape [2] has 1 dims but the input has 2 spatial dims"), std::string::npos) << e;
}

TEST(NnMaxUnpool, InvertsMaxPool) {
  ModelBuilder mb(12);
  mb.input("x", DType::kF32, {"1", "2", "4", "4"}).node("MaxPool", {"x"}, {"p", "i"})
      .attr("kernel_shape", std::vector<int64_t>{2, 2}).attr("strides", std::vector<int64_t>{2, 2})
      .node("MaxUnpool", {"p", "i"}, {"y"}).attr("kernel_shape", std::vector<int64_t>{2, 2})
      .attr("strides", std::vector<int64_t>{2, 2}).output("y");
  EXPECT_EQ(built_shape(mb), "[1,2,4,4]");
  Tensor x = random_f32({1, 2, 4, 4}, 9);
  Tensor y = run_y(mb, {{"x", x}});
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 2, 4, 4}));
  // Each 2x2 block of y holds the block's max of x at its place, zeros elsewhere.
  for (int c = 0; c < 2; ++c)
    for (int bi = 0; bi < 2; ++bi)
      for (int bj = 0; bj < 2; ++bj) {
        double best = -1e9;
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) best = std::max(best, at(x, c * 16 + (bi * 2 + i) * 4 + bj * 2 + j));
        int nonzero = 0;
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j) {
            const double v = at(y, c * 16 + (bi * 2 + i) * 4 + bj * 2 + j);
            if (v == 0) continue;
            ++nonzero;
            EXPECT_FLOAT_EQ(v, best);
          }
        EXPECT_EQ(nonzero, 1);
      }
}

TEST(NnMaxUnpool, IndexOutOfRange) {
  ModelBuilder mb(11);
  mb.input("x", DType::kF32, {"1", "1", "1", "1"}).input("i", DType::kI64, {"1", "1", "1", "1"})
      .node("MaxUnpool", {"x", "i"}, {"y"}).attr("kernel_shape", std::vector<int64_t>{2, 2}).output("y");
  auto r = run(mb, {{"x", f32_tensor({1, 1, 1, 1}, {1})}, {"i", i64_tensor({1, 1, 1, 1}, {4})}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("index 4 at position 0 is outside"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace kiln
