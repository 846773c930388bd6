#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

ModelBuilder batch_norm_model(int64_t training) {
  ModelBuilder b(15);
  b.input("x", DType::kF32, {"2", "2", "1"})
      .initializer("scale", f32_tensor({2}, {1, 2}))
      .initializer("bias", f32_tensor({2}, {0, 1}))
      .initializer("mean", f32_tensor({2}, {1, -1}))
      .initializer("var", f32_tensor({2}, {4, 0.25f}));
  if (training) {
    b.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y", "run_mean", "run_var"})
        .attr("training_mode", int64_t{1})
        .attr("momentum", 0.5f)
        .attr("epsilon", 0.f)
        .output("y")
        .output("run_mean")
        .output("run_var");
  } else {
    b.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"})
        .attr("epsilon", 0.f)
        .output("y");
  }
  return b;
}

// x[n, c]: channel 0 holds (3, 5), channel 1 holds (0, -2).
const Tensor kX = f32_tensor({2, 2, 1}, {3, 0, 5, -2});

TEST(BatchNormalizationOps, InferenceUsesGivenStatistics) {
  auto r = run_model(batch_norm_model(0), {{"x", kX}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // c0: (x - 1) / 2; c1: (x + 1) / 0.5 * 2 + 1
  expect_near_all(r->at("y"), {1, 5, 2, -3});
}

TEST(BatchNormalizationOps, TrainingUsesBatchStatisticsAndUpdatesRunningOnes) {
  auto r = run_model(batch_norm_model(1), {{"x", kX}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // Batch: c0 mean 4 var 1; c1 mean -1 var 1.
  expect_near_all(r->at("y"), {-1, 2 * 1 + 1, 1, 2 * -1 + 1});
  expect_near_all(r->at("run_mean"), {0.5 * 1 + 0.5 * 4, 0.5 * -1 + 0.5 * -1});
  expect_near_all(r->at("run_var"), {0.5 * 4 + 0.5 * 1, 0.5 * 0.25 + 0.5 * 1});
}

TEST(BatchNormalizationOps, ChannelMismatchIsABuildError) {
  ModelBuilder b(15);
  b.input("x", DType::kF32, {"1", "3", "4"});
  for (const char* p : {"s", "b", "m", "v"}) b.initializer(p, f32_tensor({2}, {1, 1}));
  b.node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}, "bn").output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'bn' (BatchNormalization): input 'scale' has shape [2] but X [1,3,4] needs [3]"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kiln
