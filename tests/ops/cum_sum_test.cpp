#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::run_model;

Result<std::map<std::string, Tensor>> cum_sum(const Tensor& x, int64_t axis, int64_t exclusive,
                                              int64_t reverse) {
  ModelBuilder b(14);
  b.input("x", x.dtype(), testing::dim_strings(x))
      .initializer("axis", Tensor::scalar_i64(axis))
      .node("CumSum", {"x", "axis"}, {"y"})
      .attr("exclusive", exclusive)
      .attr("reverse", reverse)
      .output("y");
  return run_model(b, {{"x", x}});
}

TEST(CumSumOps, ModesAlongEachAxis) {
  Tensor x = f32_tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  auto r = cum_sum(x, 1, 0, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {1, 3, 6, 4, 9, 15});
  r = cum_sum(x, -2, 0, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {1, 2, 3, 5, 7, 9});
  r = cum_sum(x, 1, 1, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {0, 1, 3, 0, 4, 9});
  r = cum_sum(x, 1, 1, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {5, 3, 0, 11, 6, 0});
  r = cum_sum(x, 1, 0, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {6, 5, 3, 15, 11, 6});
}

TEST(CumSumOps, IntegersAndEmpty) {
  auto r = cum_sum(i64_tensor({3}, {int64_t{1} << 60, 1, 2}), 0, 0, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").data<int64_t>()[2], (int64_t{1} << 60) + 3);
  r = cum_sum(Tensor(DType::kF32, {0, 3}), 0, 0, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").numel(), 0);
}

TEST(CumSumOps, BadAxisIsABuildError) {
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"2", "3"})
      .initializer("axis", Tensor::scalar_i64(2))
      .node("CumSum", {"x", "axis"}, {"y"}, "cs")
      .output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'cs' (CumSum): axis 2 is out of range for a tensor of rank 2"), std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kiln
