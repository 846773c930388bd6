// Bad models at build time: a clear error naming what is wrong, never a crash.
#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

Result<Engine> build(const ModelBuilder& b, std::vector<OptimizationProfile> profiles = {}) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.profiles = std::move(profiles);
  return Builder::build_from_bytes(b.bytes(), cfg);
}

TEST(Builder, MissingFile) {
  auto e = Builder::build_from_file("/nonexistent/model.onnx", {});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find("/nonexistent/model.onnx"), std::string::npos);
}

TEST(Builder, MissingInitializer) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2"}).node("Mul", {"x", "scale"}, {"y"}, "mul0").output("y");
  auto e = build(b);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("'scale'"), std::string::npos);
  EXPECT_NE(e.status().message().find("missing initializer"), std::string::npos) << e.status().message();
}

TEST(Builder, DimMismatchAtBuild) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3"})
      .initializer("w", testing::f32_tensor({4}, {1, 2, 3, 4}))
      .node("Add", {"x", "w"}, {"y"}, "add_bias")
      .output("y");
  auto e = build(b);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("node 'add_bias' (Add)"), std::string::npos) << e.status().message();
  EXPECT_NE(e.status().message().find("[batch,3] and [4]"), std::string::npos) << e.status().message();
}

TEST(Builder, UnknownOp) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2"}).node("MyCustomOp", {"x"}, {"y"}, "custom").output("y");
  auto e = build(b);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(e.status().message().find("MyCustomOp (node 'custom')"), std::string::npos);
}

TEST(Builder, ProfileRankMismatch) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3"}).node("Relu", {"x"}, {"y"}).output("y");
  OptimizationProfile p;
  p.inputs["x"] = {{1}, {2}, {3}};
  auto e = build(b, {p});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("rank 2 but the profile gives 1"), std::string::npos) << e.status().message();
}

TEST(Builder, ProfileMinAboveMax) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3"}).node("Relu", {"x"}, {"y"}).output("y");
  OptimizationProfile p;
  p.inputs["x"] = {{8, 3}, {4, 3}, {2, 3}};
  auto e = build(b, {p});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("min <= opt <= max"), std::string::npos);
}

TEST(Builder, ShapeChainsFoldWhenStatic) {
  // y = Reshape(x, Shape(x)) — with a static x the Shape folds away and only the Reshape remains (then goes as a no-op).
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3"})
      .node("Shape", {"x"}, {"s"})
      .node("Reshape", {"x", "s"}, {"r"})
      .node("Relu", {"r"}, {"y"})
      .output("y");
  auto e = build(b);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto hist = e->op_histogram();
  EXPECT_EQ(hist.count("Shape"), 0u);
  EXPECT_EQ(hist.count("Reshape"), 0u);
  EXPECT_EQ(hist["Relu"], 1);
}

TEST(Builder, ScalarInputStaysARuntimeInput) {
  // The seed's pitfall: y = x * temperature must not bake temperature in.
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"}).input("temperature", DType::kF32, {}).node("Mul", {"x", "temperature"}, {"y"}).output("y");
  auto e = build(b);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  ASSERT_EQ(e->inputs().size(), 2u);
  auto ctx = e->create_context();
  for (float t : {0.5f, 2.0f}) {
    auto out = ctx->infer({{"x", testing::f32_tensor({3}, {1, 2, 3})}, {"temperature", Tensor::scalar_f32(t)}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_FLOAT_EQ(out->at("y").data<float>()[2], 3.f * t);
  }
}

}  // namespace
}  // namespace kiln
