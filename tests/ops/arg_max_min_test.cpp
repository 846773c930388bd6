#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::dim_strings;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

Result<std::map<std::string, Tensor>> run_arg(const std::string& op, const Tensor& x, int64_t axis,
                                              int64_t keepdims, int64_t last) {
  ModelBuilder b(13);
  b.input("x", x.dtype(), dim_strings(x))
      .node(op, {"x"}, {"y"})
      .attr("axis", axis)
      .attr("keepdims", keepdims)
      .attr("select_last_index", last)
      .output("y");
  return run_model(b, {{"x", x}});
}

std::vector<int64_t> ints(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

TEST(ArgMaxMinOps, FirstOrLastOfTies) {
  // Rows: [2, 7, 7] and [5, 1, 1].
  Tensor x = f32_tensor({2, 3}, {2, 7, 7, 5, 1, 1});
  auto r = run_arg("ArgMax", x, 1, 0, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dtype(), DType::kI64);
  EXPECT_EQ(ints(r->at("y")), (std::vector<int64_t>{1, 0}));
  r = run_arg("ArgMax", x, -1, 1, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(ints(r->at("y")), (std::vector<int64_t>{2, 0}));
  r = run_arg("ArgMin", x, 1, 0, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(ints(r->at("y")), (std::vector<int64_t>{0, 2}));
  r = run_arg("ArgMin", x, 0, 1, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(ints(r->at("y")), (std::vector<int64_t>{0, 1, 1}));
}

TEST(ArgMaxMinOps, IntegerInputAlongMiddleAxis) {
  Tensor x = testing::i64_tensor({1, 3, 2}, {4, -1, 9, -5, 9, 0});
  auto r = run_arg("ArgMax", x, 1, 0, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ints(r->at("y")), (std::vector<int64_t>{1, 2}));
}

TEST(ArgMaxMinOps, BadAxisAndEmptyAxis) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"})
      .node("ArgMax", {"x"}, {"y"}, "am")
      .attr("axis", int64_t{2})
      .output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'am' (ArgMax): axis 2 is out of range for a tensor of rank 2"), std::string::npos)
      << msg;
  ModelBuilder e(13);
  e.input("x", DType::kF32, {"0", "3"}).node("ArgMin", {"x"}, {"y"}).output("y");
  EXPECT_NE(testing::build_error(e).find("is empty"), std::string::npos) << testing::build_error(e);
}

}  // namespace
}  // namespace kiln
