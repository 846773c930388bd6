#include "backends/cpu/dispatch.h"
#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

TEST(LayerNormalizationOps, LastAxisWithStatistics) {
  // Rows [1, 2, 6] and [-1, -1, -1] (zero variance: the output is just B).
  Tensor x = f32_tensor({2, 3}, {1, 2, 6, -1, -1, -1});
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "3"})
      .initializer("scale", f32_tensor({3}, {1, 2, 0.5f}))
      .initializer("bias", f32_tensor({3}, {0, 1, -1}))
      .node("LayerNormalization", {"x", "scale", "bias"}, {"y", "mean", "inv_std"})
      .attr("epsilon", 0.001f)
      .output("y")
      .output("mean")
      .output("inv_std");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const double m = 3, var = (4 + 1 + 9) / 3.0, inv = 1 / std::sqrt(var + 0.001), inv2 = 1 / std::sqrt(0.001);
  expect_near_all(r->at("y"), {(1 - m) * inv, (2 - m) * inv * 2 + 1, (6 - m) * inv * 0.5 - 1, 0, 1, -1});
  EXPECT_EQ(r->at("mean").dims(), (std::vector<int64_t>{2, 1}));
  expect_near_all(r->at("mean"), {3, -1});
  expect_near_all(r->at("inv_std"), {inv, inv2});
}

TEST(LayerNormalizationOps, AxisZeroNormalizesEverythingWithoutBias) {
  Tensor x = f32_tensor({1, 2, 2}, {0, 2, 4, 6});
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"1", "2", "2"})
      .initializer("scale", f32_tensor({2, 2}, {1, 1, 1, 1}))
      .node("LayerNormalization", {"x", "scale"}, {"y"})
      .attr("axis", int64_t{0})
      .attr("epsilon", 0.f)
      .output("y");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const double s = std::sqrt(5.0);  // mean 3, variance (9 + 1 + 1 + 9) / 4
  expect_near_all(r->at("y"), {-3 / s, -1 / s, 1 / s, 3 / s});
}

TEST(LayerNormalizationOps, HalfInputKeepsFloatStatistics) {
  // Y follows X (f16); Mean and InvStdDev follow stash_type (f32).
  Tensor x = cpu::convert_tensor(f32_tensor({1, 2}, {1, 3}), DType::kF16);
  ModelBuilder b(17);
  b.input("x", DType::kF16, {"1", "2"})
      .initializer("scale", cpu::convert_tensor(f32_tensor({2}, {1, 1}), DType::kF16))
      .node("LayerNormalization", {"x", "scale"}, {"y", "mean"})
      .attr("epsilon", 0.f)
      .output("y")
      .output("mean");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dtype(), DType::kF16);
  EXPECT_EQ(r->at("mean").dtype(), DType::kF32);
  expect_near_all(cpu::convert_tensor(r->at("y"), DType::kF32), {-1, 1}, 1e-3);
  expect_near_all(r->at("mean"), {2});
}

TEST(LayerNormalizationOps, ScaleThatDoesNotBroadcastIsABuildError) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"2", "3"})
      .initializer("scale", f32_tensor({4}, {1, 1, 1, 1}))
      .node("LayerNormalization", {"x", "scale"}, {"y"}, "ln")
      .output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(
      msg.find("node 'ln' (LayerNormalization): input 'Scale' has shape [4] which does not broadcast to the "
               "normalized shape [3]"),
      std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kiln
