// The models in models/ against float64 numpy references written by scripts/make_models.py, and the dynamic
// batch/sequence model at many shapes from one build.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/tensor_io.h"
#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

const std::string kModels = std::string(KILN_SOURCE_DIR) + "/models/";

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a.get_as_double(i) - b.get_as_double(i)));
  return m;
}

TEST(ShippedModels, TinyCnnMatchesReference) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  OptimizationProfile p;
  p.inputs["image"] = {{1, 3, 32, 32}, {4, 3, 32, 32}, {8, 3, 32, 32}};
  cfg.profiles = {p};
  auto e = Builder::build_from_file(kModels + "tiny_cnn.onnx", cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto x = io::load_npy(kModels + "tiny_cnn.input.npy");
  auto want = io::load_npy(kModels + "tiny_cnn.expected.npy");
  ASSERT_TRUE(x.ok() && want.ok());
  auto out = e->create_context()->infer({{"image", *x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(out->at("probs").dims(), want->dims());
  EXPECT_LT(max_abs_diff(out->at("probs"), *want), 1e-5);
}

class TinyAttention : public ::testing::Test {
 protected:
  void SetUp() override {
    BuildConfig cfg;
    cfg.backend = BackendKind::kCpu;
    OptimizationProfile p;
    p.inputs["tokens"] = {{1, 1, 32}, {2, 16, 32}, {4, 64, 32}};
    cfg.profiles = {p};
    auto e = Builder::build_from_file(kModels + "tiny_attention.onnx", cfg);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = *e;
  }
  Engine engine_;
};

TEST_F(TinyAttention, MatchesReference) {
  auto x = io::load_npy(kModels + "tiny_attention.input.npy");
  auto want = io::load_npy(kModels + "tiny_attention.expected.npy");
  ASSERT_TRUE(x.ok() && want.ok());
  auto out = engine_.create_context()->infer({{"tokens", *x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_LT(max_abs_diff(out->at("out"), *want), 1e-4);
}

TEST_F(TinyAttention, OneBuildRunsManyShapesAndBatchRowsAreIndependent) {
  auto ctx = engine_.create_context();
  for (auto [b, s] : {std::pair<int64_t, int64_t>{1, 1}, {1, 7}, {3, 5}, {4, 64}, {2, 33}}) {
    Tensor x = testing::random_f32({b, s, 32}, static_cast<uint64_t>(b * 100 + s));
    auto out = ctx->infer({{"tokens", x}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    const Tensor& y = out->at("out");
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{b, s, 32}));
    // Row 0 alone must give the same result as inside the batch.
    Tensor x0(DType::kF32, {1, s, 32});
    std::copy(x.data<float>(), x.data<float>() + s * 32, x0.data<float>());
    auto out0 = ctx->infer({{"tokens", x0}});
    ASSERT_TRUE(out0.ok());
    for (int64_t i = 0; i < s * 32; ++i) ASSERT_NEAR(out0->at("out").data<float>()[i], y.data<float>()[i], 1e-5);
  }
  auto too_long = ctx->infer({{"tokens", Tensor(DType::kF32, {1, 65, 32})}});
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kOutOfRange);
}

TEST_F(TinyAttention, ShapeChainsStayDynamic) {
  // Batch and sequence are dynamic, so the Shape->Gather->Concat->Reshape plumbing must survive as runtime nodes.
  auto hist = engine_.op_histogram();
  EXPECT_GE(hist["Shape"], 1);
  EXPECT_EQ(engine_.inputs()[0].shape.to_string(), "[batch,seq,32]");
}

}  // namespace
}  // namespace kiln
