#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

Result<std::map<std::string, Tensor>> run(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_bytes(b.bytes(), cfg));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  return ctx.infer(inputs);
}

Tensor u8(std::vector<int64_t> dims, std::vector<uint8_t> v) { return Tensor::from_vector(DType::kU8, dims, v); }
Tensor i8(std::vector<int64_t> dims, std::vector<int8_t> v) { return Tensor::from_vector(DType::kI8, dims, v); }

// Deterministic 8-bit data spread over the whole range.
Tensor pattern(DType dt, std::vector<int64_t> dims, int seed) {
  Tensor t(dt, dims);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int v = (i * 37 + seed * 11) % 256;
    if (dt == DType::kU8) t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
    else t.data<int8_t>()[i] = static_cast<int8_t>(v - 128);
  }
  return t;
}

TEST(MatMulIntegerOp, ScalarZeroPoints) {
  ModelBuilder b(10);
  b.input("a", DType::kU8, {"2", "3"})
      .input("b", DType::kU8, {"3", "1"})
      .initializer("za", u8({}, {12}))
      .initializer("zb", u8({1}, {1}))
      .node("MatMulInteger", {"a", "b", "za", "zb"}, {"y"})
      .output("y");
  auto out = run(b, {{"a", u8({2, 3}, {11, 7, 3, 10, 6, 255})}, {"b", u8({3, 1}, {1, 2, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dtype(), DType::kI32);
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{2, 1}));
  // (a - 12) . (b - 1) with b - 1 = [0, 1, 2].
  EXPECT_EQ(y.data<int32_t>()[0], -5 + 2 * -9);
  EXPECT_EQ(y.data<int32_t>()[1], -6 + 2 * 243);
}

TEST(MatMulIntegerOp, PerRowAndPerColumnZeroPointsWithBatchBroadcast) {
  const Tensor a = pattern(DType::kI8, {2, 3, 4}, 1);
  const Tensor bm = pattern(DType::kU8, {4, 5}, 2);
  const Tensor za = i8({3}, {-3, 0, 7});
  const Tensor zb = u8({5}, {0, 1, 128, 200, 255});
  ModelBuilder mb(10);
  mb.input("a", DType::kI8, {"2", "3", "4"})
      .input("b", DType::kU8, {"4", "5"})
      .initializer("za", za)
      .initializer("zb", zb)
      .node("MatMulInteger", {"a", "b", "za", "zb"}, {"y"})
      .output("y");
  auto out = run(mb, {{"a", a}, {"b", bm}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{2, 3, 5}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) {
        int32_t want = 0;
        for (int64_t k = 0; k < 4; ++k)
          want += (a.data<int8_t>()[(n * 3 + i) * 4 + k] - za.data<int8_t>()[i]) *
                  (bm.data<uint8_t>()[k * 5 + j] - zb.data<uint8_t>()[j]);
        EXPECT_EQ(y.data<int32_t>()[(n * 3 + i) * 5 + j], want) << n << "," << i << "," << j;
      }
}

TEST(MatMulIntegerOp, VectorTimesMatrixWithoutZeroPoints) {
  ModelBuilder b(10);
  b.input("a", DType::kU8, {"3"}).input("b", DType::kI8, {"3", "2"}).node("MatMulInteger", {"a", "b"}, {"y"}).output("y");
  auto out = run(b, {{"a", u8({3}, {1, 2, 255})}, {"b", i8({3, 2}, {1, -1, 2, -2, -128, 127})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(out->at("y").dims(), (std::vector<int64_t>{2}));
  EXPECT_EQ(out->at("y").data<int32_t>()[0], 1 + 4 - 128 * 255);
  EXPECT_EQ(out->at("y").data<int32_t>()[1], -1 - 4 + 127 * 255);
}

TEST(MatMulIntegerOp, InnerDimMismatchIsABuildError) {
  ModelBuilder b(10);
  b.input("a", DType::kU8, {"2", "3"}).input("b", DType::kU8, {"4", "2"}).node("MatMulInteger", {"a", "b"}, {"y"}).output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("inner dims differ: A [2,3] has K=3 but B [4,2] has K=4"), std::string::npos)
      << e.status().message();
}

TEST(QLinearMatMulOp, RequantizesWithPerColumnScales) {
  const Tensor a = pattern(DType::kU8, {1, 3, 7}, 3);
  const Tensor bm = pattern(DType::kU8, {7, 2}, 4);
  const std::vector<float> sb = {0.01f, 0.003f};
  const std::vector<uint8_t> zb = {128, 100};
  ModelBuilder mb(10);
  mb.input("a", DType::kU8, {"1", "3", "7"})
      .input("b", DType::kU8, {"7", "2"})
      .initializer("sa", testing::f32_tensor({}, {0.02f}))
      .initializer("za", u8({}, {113}))
      .initializer("sb", testing::f32_tensor({2}, sb))
      .initializer("zb", u8({2}, zb))
      .initializer("sy", testing::f32_tensor({1}, {0.05f}))
      .initializer("zy", u8({1}, {120}))
      .node("QLinearMatMul", {"a", "sa", "za", "b", "sb", "zb", "sy", "zy"}, {"y"})
      .output("y");
  auto out = run(mb, {{"a", a}, {"b", bm}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dtype(), DType::kU8);
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 3, 2}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 2; ++j) {
      int32_t acc = 0;
      for (int64_t k = 0; k < 7; ++k) acc += (a.data<uint8_t>()[i * 7 + k] - 113) * (bm.data<uint8_t>()[k * 2 + j] - zb[j]);
      const double q = std::nearbyint(acc * double{0.02f} * sb[j] / double{0.05f}) + 120;
      EXPECT_EQ(y.data<uint8_t>()[i * 2 + j], static_cast<uint8_t>(std::min(255.0, std::max(0.0, q)))) << i << "," << j;
    }
}

}  // namespace
}  // namespace kiln
