#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::run_model;

const Tensor kInput = f32_tensor({2, 3}, {-1, -2, -3, -0.5f, -1.5f, -2.5f});

Result<std::map<std::string, Tensor>> nll(const std::string& reduction, const Tensor& target,
                                          std::optional<int64_t> ignore) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"})
      .input("t", DType::kI64, {"2"})
      .initializer("w", f32_tensor({3}, {1, 2, 3}))
      .node("NegativeLogLikelihoodLoss", {"x", "t", "w"}, {"loss"}, "nll")
      .attr("reduction", reduction);
  if (ignore) b.attr("ignore_index", *ignore);
  b.output("loss");
  return run_model(b, {{"x", kInput}, {"t", target}});
}

TEST(NllLossOps, Reductions) {
  const Tensor t = i64_tensor({2}, {2, 0});
  auto r = nll("none", t, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("loss"), {9, 0.5});
  r = nll("sum", t, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->at("loss").dims().empty());
  expect_near_all(r->at("loss"), {9.5});
  r = nll("mean", t, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("loss"), {9.5 / 4});  // divided by the weights used: 3 + 1
}

TEST(NllLossOps, IgnoredTargetsCountNothing) {
  auto r = nll("mean", i64_tensor({2}, {2, 0}), 2);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("loss"), {0.5});
  r = nll("none", i64_tensor({2}, {-7, 1}), -7);  // an ignored target need not be a class
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("loss"), {0, 3});
}

TEST(NllLossOps, Errors) {
  auto r = nll("none", i64_tensor({2}, {3, 0}), std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.status().message().find("node 'nll' (NegativeLogLikelihoodLoss): target value 3 at flat index 0 is "
                                "not a class in [0, 3)"),
      std::string::npos)
      << r.status().message();
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3", "4"})
      .input("t", DType::kI64, {"2", "5"})
      .node("NegativeLogLikelihoodLoss", {"x", "t"}, {"loss"}, "nll")
      .output("loss");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(
      msg.find("input 'input' [2,3,4] needs 'target' shaped like it without the class axis 1, got [2,5]"),
      std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kiln
