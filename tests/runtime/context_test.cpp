// ExecutionContext: bad input at run time gives a clear error and the context keeps working.
#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

Engine build_mul(bool with_profile) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3"})
      .initializer("w", testing::f32_tensor({3}, {1, 2, 3}))
      .node("Mul", {"x", "w"}, {"y"})
      .output("y", DType::kF32, {"batch", "3"});
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  if (with_profile) {
    OptimizationProfile p;
    p.inputs["x"] = {{1, 3}, {2, 3}, {4, 3}};
    cfg.profiles.push_back(p);
  }
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return *e;
}

TEST(Context, UnknownInputNameListsValidOnes) {
  auto ctx = build_mul(false).create_context();
  auto r = ctx->infer({{"x", Tensor(DType::kF32, {1, 3})}, {"z", Tensor(DType::kF32, {1})}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("no input 'z'"), std::string::npos);
  EXPECT_NE(r.status().message().find("'x'"), std::string::npos);
}

TEST(Context, MissingInput) {
  auto ctx = build_mul(false).create_context();
  auto r = ctx->infer({});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("input 'x' (f32 [batch,3]) was not given"), std::string::npos) << r.status().message();
}

TEST(Context, WrongDtype) {
  auto ctx = build_mul(false).create_context();
  auto r = ctx->infer({{"x", Tensor(DType::kI64, {1, 3})}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("must be f32 but i64"), std::string::npos);
}

TEST(Context, WrongStaticDim) {
  auto ctx = build_mul(false).create_context();
  auto r = ctx->infer({{"x", Tensor(DType::kF32, {2, 4})}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("dim 1 must be 3"), std::string::npos) << r.status().message();
}

TEST(Context, OutsideProfileNamesRangeAndKeepsWorking) {
  auto ctx = build_mul(true).create_context();
  auto r = ctx->infer({{"x", Tensor(DType::kF32, {5, 3})}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(r.status().message().find("dim 0 is 5, outside optimization profile 0 which allows 1..4"), std::string::npos)
      << r.status().message();
  Status s = ctx->set_input_shape("x", {0, 3});
  EXPECT_FALSE(s.ok());
  auto ok = ctx->infer({{"x", testing::f32_tensor({4, 3}, std::vector<float>(12, 1.f))}});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_FLOAT_EQ(ok->at("y").data<float>()[11], 3.f);
}

TEST(Context, ProfileSelection) {
  auto ctx = build_mul(true).create_context();
  EXPECT_TRUE(ctx->set_profile(0).ok());
  Status s = ctx->set_profile(1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("profile 1 does not exist"), std::string::npos);
}

TEST(Context, OutputShapeFollowsInputShape) {
  auto ctx = build_mul(true).create_context();
  ASSERT_TRUE(ctx->set_input_shape("x", {3, 3}).ok());
  auto dims = ctx->output_shape("y");
  ASSERT_TRUE(dims.ok()) << dims.status().to_string();
  EXPECT_EQ(*dims, (std::vector<int64_t>{3, 3}));
  EXPECT_FALSE(ctx->output_shape("nope").ok());
}

// Reshape to [Shape(x)[0], 2, 3], as torch exports a view with a dynamic batch: the output's dims come from
// shape math the engine keeps, and output_shape folds it for the set input dims without a run (a run would
// leave a second plan with every output in its arena).
TEST(Context, OutputShapeThroughShapeMathBeforeAnyRun) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "6"})
      .initializer("zero", Tensor::from_vector<int64_t>(DType::kI64, {1}, {0}))
      .initializer("tail", Tensor::from_vector<int64_t>(DType::kI64, {2}, {2, 3}))
      .node("Shape", {"x"}, {"sx"})
      .node("Gather", {"sx", "zero"}, {"n"})
      .attr("axis", int64_t{0})
      .node("Concat", {"n", "tail"}, {"target"})
      .attr("axis", int64_t{0})
      .node("Reshape", {"x", "target"}, {"y"})
      .output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  OptimizationProfile p;
  p.inputs["x"] = {{1, 6}, {2, 6}, {8, 6}};
  cfg.profiles.push_back(p);
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok());
  for (int64_t n : {5, 3}) {
    ASSERT_TRUE(ctx->set_input_shape("x", {n, 6}).ok());
    auto dims = ctx->output_shape("y");
    ASSERT_TRUE(dims.ok()) << dims.status().to_string();
    EXPECT_EQ(*dims, (std::vector<int64_t>{n, 2, 3}));
  }
}

TEST(Context, EnqueueWithCallerBuffers) {
  auto ctx = build_mul(true).create_context();
  std::vector<float> in = {1, 1, 1, 2, 2, 2}, out(6, -1.f);
  ASSERT_TRUE(ctx->set_input_shape("x", {2, 3}).ok());
  ASSERT_TRUE(ctx->set_tensor_address("x", in.data(), in.size() * 4).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", out.data(), out.size() * 4).ok());
  ASSERT_TRUE(ctx->enqueue().ok());
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 2, 4, 6}));
}

TEST(Context, TooSmallOutputBufferIsAnErrorAndWritesNothing) {
  auto ctx = build_mul(true).create_context();
  std::vector<float> in(6, 1.f), out(5, -1.f);
  ASSERT_TRUE(ctx->set_input_shape("x", {2, 3}).ok());
  ASSERT_TRUE(ctx->set_tensor_address("x", in.data(), in.size() * 4).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", out.data(), out.size() * 4).ok());
  Status s = ctx->enqueue();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("buffer holds 20 bytes"), std::string::npos) << s.message();
  EXPECT_EQ(out, std::vector<float>(5, -1.f));
  EXPECT_FALSE(ctx->set_tensor_address("x", nullptr, 0).ok());
}

TEST(Context, EngineSharedByManyContexts) {
  Engine e = build_mul(false);
  auto a = e.create_context();
  auto b = e.create_context();
  auto ra = a->infer({{"x", testing::f32_tensor({1, 3}, {1, 1, 1})}});
  auto rb = b->infer({{"x", testing::f32_tensor({2, 3}, {2, 2, 2, 2, 2, 2})}});
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra->at("y").dims(), (std::vector<int64_t>{1, 3}));
  EXPECT_FLOAT_EQ(rb->at("y").data<float>()[5], 6.f);
}

TEST(Context, ProfileLayersTimesEachNodeAndChecksBuffers) {
  auto ctx = build_mul(true).create_context();
  ASSERT_TRUE(ctx.ok());
  std::vector<float> x(4 * 3, 1.f);
  ASSERT_TRUE(ctx->set_input_shape("x", {2, 3}).ok());
  auto unbound = ctx->profile_layers();
  ASSERT_FALSE(unbound.ok());
  EXPECT_NE(unbound.status().message().find("set_tensor_address"), std::string::npos);
  // A buffer smaller than the shape is refused, never read past.
  ASSERT_TRUE(ctx->set_tensor_address("x", x.data(), 3 * sizeof(float)).ok());
  auto small = ctx->profile_layers();
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("buffer holds 12"), std::string::npos) << small.status().message();
  ASSERT_TRUE(ctx->set_tensor_address("x", x.data(), x.size() * sizeof(float)).ok());
  auto layers = ctx->profile_layers();
  ASSERT_TRUE(layers.ok()) << layers.status().to_string();
  ASSERT_EQ(layers->size(), 1u);
  EXPECT_EQ((*layers)[0].op, "Mul");
  EXPECT_EQ((*layers)[0].placement, "cpu");
  EXPECT_GE((*layers)[0].ms, 0.0);
  EXPECT_EQ(ctx->last_run_info().host_nodes, 1);
}

}  // namespace
}  // namespace kiln
