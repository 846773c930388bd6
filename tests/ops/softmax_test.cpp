#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::dim_strings;
using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

Result<std::map<std::string, Tensor>> run_op(const std::string& op, int64_t opset, const Tensor& x,
                                             std::optional<int64_t> axis) {
  ModelBuilder b(opset);
  b.input("x", x.dtype(), dim_strings(x)).node(op, {"x"}, {"y"});
  if (axis) b.attr("axis", *axis);
  b.output("y");
  return run_model(b, {{"x", x}});
}

std::vector<double> softmax(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += std::exp(x);
  std::vector<double> out;
  for (double x : v) out.push_back(std::exp(x) / s);
  return out;
}

TEST(SoftmaxOps, Opset13UsesOneAxis) {
  // [2, 2, 1]: the default axis -1 has size 1, so every output is 1; axis 1 pairs (1, 3) and (2, 4).
  Tensor x = f32_tensor({2, 2, 1}, {1, 2, 3, 4});
  auto r = run_op("Softmax", 13, x, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {1, 1, 1, 1});
  r = run_op("Softmax", 13, x, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto a = softmax({1, 2}), b = softmax({3, 4});
  expect_near_all(r->at("y"), {a[0], a[1], b[0], b[1]});
}

TEST(SoftmaxOps, BeforeOpset13FlattensFromAxis) {
  // Default axis 1 on [1, 3, 1]: one row of 3 (not 3 rows of 1).
  Tensor x = f32_tensor({1, 3, 1}, {0.5f, -1, 2});
  auto r = run_op("Softmax", 11, x, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), softmax({0.5, -1, 2}));
  r = run_op("LogSoftmax", 11, x, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto s = softmax({0.5, -1, 2});
  expect_near_all(r->at("y"), {std::log(s[0]), std::log(s[1]), std::log(s[2])});
}

TEST(SoftmaxOps, LargeValuesStayFinite) {
  auto r = run_op("LogSoftmax", 13, f32_tensor({1, 3}, {1000, 1001, 1002}), std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto s = softmax({0, 1, 2});
  expect_near_all(r->at("y"), {std::log(s[0]), std::log(s[1]), std::log(s[2])});
}

TEST(SoftmaxOps, HardmaxPicksFirstMaximum) {
  auto r = run_op("Hardmax", 13, f32_tensor({2, 3}, {1, 5, 5, -2, -3, -9}), std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {0, 1, 0, 1, 0, 0});
  r = run_op("Hardmax", 11, f32_tensor({2, 1, 2}, {1, 5, 7, 3}), 0);  // one row of all 4
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {0, 0, 1, 0});
}

TEST(SoftmaxOps, BadAxisAndIntegerInput) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"})
      .node("Softmax", {"x"}, {"y"}, "sm")
      .attr("axis", int64_t{-3})
      .output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'sm' (Softmax): axis -3 is out of range for a tensor of rank 2"),
            std::string::npos)
      << msg;
  ModelBuilder i(13);
  i.input("x", DType::kI32, {"2"}).node("LogSoftmax", {"x"}, {"y"}).output("y");
  EXPECT_NE(testing::build_error(i).find("needs a float input"), std::string::npos);
}

}  // namespace
}  // namespace kiln
