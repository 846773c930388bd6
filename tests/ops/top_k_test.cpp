#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::run_model;

Result<std::map<std::string, Tensor>> top_k(const Tensor& x, int64_t k, int64_t axis, int64_t largest) {
  ModelBuilder b(11);
  b.input("x", x.dtype(), testing::dim_strings(x))
      .initializer("k", i64_tensor({1}, {k}))
      .node("TopK", {"x", "k"}, {"values", "indices"})
      .attr("axis", axis)
      .attr("largest", largest)
      .output("values")
      .output("indices");
  return run_model(b, {{"x", x}});
}

std::vector<int64_t> ints(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

const Tensor kX = f32_tensor({2, 4}, {3, 1, 3, 2, 0, -1, 5, 5});

TEST(TopKOps, LargestWithTiesByLowerIndex) {
  auto r = top_k(kX, 2, -1, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("values").dims(), (std::vector<int64_t>{2, 2}));
  expect_near_all(r->at("values"), {3, 3, 5, 5});
  EXPECT_EQ(ints(r->at("indices")), (std::vector<int64_t>{0, 2, 2, 3}));
}

TEST(TopKOps, SmallestAndOtherAxis) {
  auto r = top_k(kX, 3, 1, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("values"), {1, 2, 3, -1, 0, 5});
  EXPECT_EQ(ints(r->at("indices")), (std::vector<int64_t>{1, 3, 0, 1, 0, 2}));
  r = top_k(kX, 1, 0, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("values").dims(), (std::vector<int64_t>{1, 4}));
  expect_near_all(r->at("values"), {3, 1, 5, 5});
  EXPECT_EQ(ints(r->at("indices")), (std::vector<int64_t>{0, 0, 1, 1}));
  r = top_k(kX, 0, 1, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("values").numel(), 0);
}

TEST(TopKOps, KAttributeBeforeOpset10) {
  ModelBuilder b(9);
  b.input("x", DType::kF32, {"1", "3"})
      .node("TopK", {"x"}, {"v", "i"})
      .attr("k", int64_t{1})
      .output("v")
      .output("i");
  auto r = run_model(b, {{"x", f32_tensor({1, 3}, {7, 9, 8})}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("v"), {9});
}

TEST(TopKOps, KLargerThanAxisIsABuildError) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"2", "4"})
      .initializer("k", i64_tensor({1}, {5}))
      .node("TopK", {"x", "k"}, {"v", "i"}, "tk")
      .output("v")
      .output("i");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'tk' (TopK): k = 5 is larger than axis 1 of the input [2,4]"), std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kiln
