#include <gtest/gtest.h>

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

template <class T>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

TEST(QuantizeLinearOp, PerTensorRoundsHalfToEvenAndSaturates) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"11"})
      .initializer("s", testing::f32_tensor({}, {2.f}))
      .initializer("z", Tensor::from_vector(DType::kU8, {}, std::vector<uint8_t>{128}))
      .node("QuantizeLinear", {"x", "s", "z"}, {"y"})
      .output("y");
  // x / 2: 0, 0.5, 1, 1.5, 2.5, -0.5, -1.5, 500, -127, -500, 1.25
  auto out = run(b, {{"x", testing::f32_tensor({11}, {0, 1, 2, 3, 5, -1, -3, 1000, -254, -1000, 2.5f})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dtype(), DType::kU8);
  EXPECT_EQ(values<uint8_t>(y), (std::vector<uint8_t>{128, 128, 129, 130, 130, 128, 126, 255, 1, 0, 129}));
}

TEST(QuantizeLinearOp, PerAxisInt8AndDefaultZeroPoint) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"1", "3", "2"})
      .initializer("s", testing::f32_tensor({3}, {1.f, 2.f, 4.f}))
      .initializer("z", Tensor::from_vector(DType::kI8, {3}, std::vector<int8_t>{0, -1, 1}))
      .node("QuantizeLinear", {"x", "s", "z"}, {"y"})
      .node("QuantizeLinear", {"x", "s"}, {"u"})
      .output("y")
      .output("u");
  auto out = run(b, {{"x", testing::f32_tensor({1, 3, 2}, {-300, 7, 4, -6, 10, 300})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dtype(), DType::kI8);
  // -300/1 -> -128 (sat); 7; 4/2=2 -> 1; -6/2=-3 -> -4; 10/4=2.5 -> 2 -> 3; 300/4=75 -> 76.
  EXPECT_EQ(values<int8_t>(out->at("y")), (std::vector<int8_t>{-128, 7, 1, -4, 3, 76}));
  EXPECT_EQ(out->at("u").dtype(), DType::kU8);
  EXPECT_EQ(values<uint8_t>(out->at("u")), (std::vector<uint8_t>{0, 7, 2, 0, 2, 75}));
}

TEST(QuantizeLinearOp, BlockedScalesOpset21) {
  ModelBuilder b(21);
  b.input("x", DType::kF32, {"2", "5"})
      .initializer("s", testing::f32_tensor({2, 3}, {1, 2, 4, 10, 20, 40}))
      .node("QuantizeLinear", {"x", "s"}, {"y"})
      .attr("axis", int64_t{1})
      .attr("block_size", int64_t{2})
      .output("y");
  auto out = run(b, {{"x", testing::f32_tensor({2, 5}, {1, 2, 4, 8, 16, 10, 20, 40, 80, 160})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<uint8_t>(out->at("y")), (std::vector<uint8_t>{1, 2, 2, 4, 4, 1, 2, 2, 4, 4}));
}

TEST(QuantizeLinearOp, EmptyInput) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"0"})
      .initializer("s", testing::f32_tensor({}, {1.f}))
      .node("QuantizeLinear", {"x", "s"}, {"y"})
      .output("y");
  auto out = run(b, {{"x", Tensor(DType::kF32, {0})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dims(), (std::vector<int64_t>{0}));
}

TEST(QuantizeLinearOp, PerAxisScaleOfWrongLengthIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"})
      .initializer("s", testing::f32_tensor({4}, {1, 1, 1, 1}))
      .node("QuantizeLinear", {"x", "s"}, {"y"}, "q")
      .output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("per-axis y_scale has 4 elements but x [2,3] has 3 along axis 1"),
            std::string::npos)
      << e.status().message();
  EXPECT_NE(e.status().message().find("'q'"), std::string::npos);
}

TEST(DequantizeLinearOp, PerAxisAndInt32) {
  ModelBuilder b(13);
  b.input("x", DType::kU8, {"2", "3"})
      .input("xi", DType::kI32, {"3"})
      .initializer("s", testing::f32_tensor({2}, {0.5f, 2.f}))
      .initializer("z", Tensor::from_vector(DType::kU8, {2}, std::vector<uint8_t>{10, 0}))
      .initializer("s1", testing::f32_tensor({}, {0.25f}))
      .node("DequantizeLinear", {"x", "s", "z"}, {"y"})
      .attr("axis", int64_t{0})
      .node("DequantizeLinear", {"xi", "s1"}, {"yi"})
      .output("y")
      .output("yi");
  auto out = run(b, {{"x", Tensor::from_vector(DType::kU8, {2, 3}, std::vector<uint8_t>{0, 10, 255, 0, 1, 255})},
                     {"xi", Tensor::from_vector(DType::kI32, {3}, std::vector<int32_t>{-8, 0, 1 << 20})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<float>(out->at("y")), (std::vector<float>{-5.f, 0.f, 122.5f, 0.f, 2.f, 510.f}));
  EXPECT_EQ(values<float>(out->at("yi")), (std::vector<float>{-2.f, 0.f, 262144.f}));
}

TEST(DequantizeLinearOp, ZeroPointDtypeMismatchIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kU8, {"3"})
      .initializer("s", testing::f32_tensor({}, {1.f}))
      .initializer("z", Tensor::from_vector(DType::kI8, {}, std::vector<int8_t>{0}))
      .node("DequantizeLinear", {"x", "s", "z"}, {"y"})
      .output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("x_zero_point is i8 but x is u8"), std::string::npos) << e.status().message();
}

TEST(DynamicQuantizeLinearOp, ScaleAndZeroPointCoverZero) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"6"}).node("DynamicQuantizeLinear", {"x"}, {"y", "s", "z"}).output("y").output("s").output("z");
  auto out = run(b, {{"x", testing::f32_tensor({6}, {0, 2, -3, -2.5f, 1.34f, 0.5f})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // Range [-3, 2]: scale 5/255, zero point round(3 / scale) = 153.
  EXPECT_FLOAT_EQ(out->at("s").data<float>()[0], 5.f / 255.f);
  EXPECT_EQ(out->at("z").data<uint8_t>()[0], 153);
  EXPECT_EQ(values<uint8_t>(out->at("y")), (std::vector<uint8_t>{153, 255, 0, 26, 221, 179}));
}

TEST(DynamicQuantizeLinearOp, AllZeros) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"3"}).node("DynamicQuantizeLinear", {"x"}, {"y", "s", "z"}).output("y").output("s").output("z");
  auto out = run(b, {{"x", testing::f32_tensor({3}, {0, 0, 0})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("s").data<float>()[0], 0.f);
  EXPECT_EQ(values<uint8_t>(out->at("y")), (std::vector<uint8_t>{0, 0, 0}));
}

}  // namespace
}  // namespace kiln
