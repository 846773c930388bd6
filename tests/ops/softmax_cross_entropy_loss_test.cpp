#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::run_model;

TEST(SoftmaxCrossEntropyLossOps, MeanWithLogProb) {
  // scores [2, 3, 1]: rows (0, 0, 0) and (1, 2, 3); labels (1, 2).
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3", "1"})
      .input("y", DType::kI64, {"2", "1"})
      .node("SoftmaxCrossEntropyLoss", {"x", "y"}, {"loss", "log_prob"})
      .output("loss")
      .output("log_prob");
  auto r =
      run_model(b, {{"x", f32_tensor({2, 3, 1}, {0, 0, 0, 1, 2, 3})}, {"y", i64_tensor({2, 1}, {1, 2})}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const double l3 = std::log(3.0), lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  expect_near_all(r->at("log_prob"), {-l3, -l3, -l3, 1 - lse, 2 - lse, 3 - lse});
  expect_near_all(r->at("loss"), {(l3 + (lse - 3)) / 2});
}

TEST(SoftmaxCrossEntropyLossOps, WeightsAndIgnoreIndex) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"3", "2"})
      .input("y", DType::kI32, {"3"})
      .initializer("w", f32_tensor({2}, {0.5f, 2}))
      .node("SoftmaxCrossEntropyLoss", {"x", "y", "w"}, {"loss"})
      .attr("reduction", std::string("none"))
      .attr("ignore_index", int64_t{-1})
      .output("loss");
  Tensor labels(DType::kI32, {3});
  labels.data<int32_t>()[0] = 0;
  labels.data<int32_t>()[1] = -1;
  labels.data<int32_t>()[2] = 1;
  auto r = run_model(b, {{"x", f32_tensor({3, 2}, {0, 0, 5, 5, 0, 0})}, {"y", labels}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const double l2 = std::log(2.0);
  expect_near_all(r->at("loss"), {0.5 * l2, 0, 2 * l2});
}

TEST(SoftmaxCrossEntropyLossOps, UnknownReductionIsUnsupported) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"3", "2"})
      .input("y", DType::kI64, {"3"})
      .node("SoftmaxCrossEntropyLoss", {"x", "y"}, {"loss"}, "sce")
      .attr("reduction", std::string("max"))
      .output("loss");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'sce' (SoftmaxCrossEntropyLoss): reduction 'max' is not supported"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kiln
