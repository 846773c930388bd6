#include <limits>

#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::dim_strings;
using testing::expect_near_all;
using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::run_model;

// One Reduce* node on x with axes as an attribute (opset 11).
Result<std::map<std::string, Tensor>> reduce_attr(const std::string& op, const Tensor& x,
                                                  std::vector<int64_t> axes, int64_t keepdims) {
  ModelBuilder b(11);
  b.input("x", x.dtype(), dim_strings(x)).node(op, {"x"}, {"y"}).attr("keepdims", keepdims);
  if (!axes.empty()) b.attr("axes", axes);
  b.output("y");
  return run_model(b, {{"x", x}});
}

TEST(ReduceOps, EveryOpOverOneAxis) {
  // x = [[1, -2, 3], [0.5, 4, -1]], reduce axis 1.
  Tensor x = f32_tensor({2, 3}, {1, -2, 3, 0.5f, 4, -1});
  const std::map<std::string, std::vector<double>> want = {
      {"ReduceSum", {2, 3.5}},
      {"ReduceMean", {2.0 / 3, 3.5 / 3}},
      {"ReduceMax", {3, 4}},
      {"ReduceMin", {-2, -1}},
      {"ReduceProd", {-6, -2}},
      {"ReduceL1", {6, 5.5}},
      {"ReduceL2", {std::sqrt(14.0), std::sqrt(17.25)}},
      {"ReduceSumSquare", {14, 17.25}},
      {"ReduceLogSumExp",
       {std::log(std::exp(1.0) + std::exp(-2.0) + std::exp(3.0)),
        std::log(std::exp(0.5) + std::exp(4.0) + std::exp(-1.0))}},
  };
  for (const auto& [op, values] : want) {
    auto r = reduce_attr(op, x, {1}, 0);
    ASSERT_TRUE(r.ok()) << op << ": " << r.status().to_string();
    EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{2})) << op;
    expect_near_all(r->at("y"), values);
  }
  auto r = reduce_attr("ReduceLogSum", f32_tensor({2, 2}, {1, 2, 3, 4}), {0}, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{1, 2}));
  expect_near_all(r->at("y"), {std::log(4.0), std::log(6.0)});
}

TEST(ReduceOps, DefaultAxesReduceEverythingAndKeepDims) {
  auto r = reduce_attr("ReduceSum", f32_tensor({3, 1, 7}, std::vector<float>(21, 0.5f)), {}, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{1, 1, 1}));
  expect_near_all(r->at("y"), {10.5});
}

TEST(ReduceOps, AxesInputAndNoopWithEmptyAxes) {
  Tensor x = f32_tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  for (int64_t noop : {0, 1}) {
    ModelBuilder b(18);
    b.input("x", DType::kF32, {"2", "3"})
        .input("axes", DType::kI64, {"0"})
        .node("ReduceMean", {"x", "axes"}, {"y"})
        .attr("keepdims", int64_t{0})
        .attr("noop_with_empty_axes", noop)
        .output("y");
    auto r = run_model(b, {{"x", x}, {"axes", Tensor(DType::kI64, {0})}});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    if (noop)
      expect_near_all(r->at("y"), {1, 2, 3, 4, 5, 6});
    else
      expect_near_all(r->at("y"), {3.5});
  }
  // ReduceSum takes axes as an input from opset 13; negative axes count from the end.
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"batch", "3"})
      .initializer("axes", i64_tensor({1}, {-2}))
      .node("ReduceSum", {"x", "axes"}, {"y"})
      .output("y");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{1, 3}));
  expect_near_all(r->at("y"), {5, 7, 9});
}

TEST(ReduceOps, EmptyReductions) {
  Tensor x(DType::kF32, {2, 0});
  const double inf = std::numeric_limits<double>::infinity();
  const std::map<std::string, double> want = {
      {"ReduceSum", 0}, {"ReduceProd", 1},         {"ReduceMax", -inf},    {"ReduceMin", inf},
      {"ReduceL2", 0},  {"ReduceLogSumExp", -inf}, {"ReduceSumSquare", 0}, {"ReduceLogSum", -inf}};
  for (const auto& [op, v] : want) {
    auto r = reduce_attr(op, x, {1}, 0);
    ASSERT_TRUE(r.ok()) << op << ": " << r.status().to_string();
    EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{2})) << op;
    EXPECT_EQ(r->at("y").get_as_double(0), v) << op;
  }
}

TEST(ReduceOps, IntegersStayExact) {
  const int64_t big = (int64_t{1} << 53) + 1;
  auto r = reduce_attr("ReduceSum", i64_tensor({3}, {big, 2, -1}), {0}, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").data<int64_t>()[0], big + 1);
  r = reduce_attr("ReduceMax", i64_tensor({1, 3}, {-7, -3, -9}), {1}, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").data<int64_t>()[0], -3);
}

TEST(ReduceOps, BadAxisIsABuildError) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"2", "3"})
      .node("ReduceMax", {"x"}, {"y"}, "rmax")
      .attr("axes", std::vector<int64_t>{2});
  b.output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'rmax' (ReduceMax): axis 2 in axes [2] is out of range for an input of rank 2"),
            std::string::npos)
      << msg;
  ModelBuilder d(11);
  d.input("x", DType::kF32, {"2", "3"})
      .node("ReduceL1", {"x"}, {"y"})
      .attr("axes", std::vector<int64_t>{1, -1});
  d.output("y");
  EXPECT_NE(testing::build_error(d).find("names axis 1 twice"), std::string::npos) << testing::build_error(d);
}

}  // namespace
}  // namespace kiln
