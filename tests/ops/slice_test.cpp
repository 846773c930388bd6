#include <limits>

#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Slices a 1-D iota of length n with one starts/ends/steps triple through the opset-13 input form.
std::vector<float> slice_1d(int64_t n, int64_t start, int64_t end, int64_t step) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {std::to_string(n)});
  b.initializer("s", i64_tensor({1}, {start})).initializer("e", i64_tensor({1}, {end}));
  b.initializer("a", i64_tensor({1}, {0})).initializer("t", i64_tensor({1}, {step}));
  b.node("Slice", {"x", "s", "e", "a", "t"}, {"y"}).output("y");
  auto out = run(b, {{"x", iota_f32({n})}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? values(out->at("y")) : std::vector<float>{-1};
}

TEST(SliceOp, ClampsAndCountsLikePython) {
  EXPECT_EQ(slice_1d(7, 1, 5, 2), (std::vector<float>{1, 3}));
  EXPECT_EQ(slice_1d(7, -3, kMax, 1), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(slice_1d(7, -100, 2, 1), (std::vector<float>{0, 1}));
  EXPECT_EQ(slice_1d(7, 10, 20, 1), (std::vector<float>{}));
  EXPECT_EQ(slice_1d(7, kMax, kMin, -1), (std::vector<float>{6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(slice_1d(7, -1, -8, -3), (std::vector<float>{6, 3, 0}));
  EXPECT_EQ(slice_1d(7, 5, 1, -2), (std::vector<float>{5, 3}));
  EXPECT_EQ(slice_1d(1, 0, kMax, kMax), (std::vector<float>{0}));
  EXPECT_EQ(slice_1d(3, 0, 3, 1), (std::vector<float>{0, 1, 2}));
}

TEST(SliceOp, AttributeFormBeforeOpset10) {
  ModelBuilder b(9);
  b.input("x", DType::kF32, {"3", "4"}).node("Slice", {"x"}, {"y"});
  b.attr("starts", std::vector<int64_t>{1, 0}).attr("ends", std::vector<int64_t>{kMax, -1});
  b.attr("axes", std::vector<int64_t>{-1, 0}).output("y");
  auto out = run(b, {{"x", iota_f32({3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{1, 2, 3, 5, 6, 7}));
}

TEST(SliceOp, SymbolicDimsAndShapeChain) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"batch", "5"});
  b.initializer("s", i64_tensor({2}, {0, 1})).initializer("e", i64_tensor({2}, {kMax, 4}));
  b.node("Slice", {"x", "s", "e"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[batch,3]");
  // Shape(x)[1:] of [batch, 3, 4] is constant: the sliced shape folds away.
  ModelBuilder c(13);
  c.input("x", DType::kI64, {"batch", "3", "4"});
  c.initializer("s", i64_tensor({1}, {1})).initializer("e", i64_tensor({1}, {kMax}));
  c.node("Shape", {"x"}, {"shape"}).node("Slice", {"shape", "s", "e"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(c), "[2]");
  auto out = run(c, {{"x", Tensor(DType::kI64, {2, 3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{3, 4}));
}

TEST(SliceOp, ZeroStepAndBadAxisAreBuildErrors) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"4"});
  b.initializer("s", i64_tensor({1}, {0})).initializer("e", i64_tensor({1}, {2}));
  b.initializer("a", i64_tensor({1}, {0})).initializer("t", i64_tensor({1}, {0}));
  b.node("Slice", {"x", "s", "e", "a", "t"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("steps [0] contain 0"), std::string::npos) << build_error(b);
  ModelBuilder c(13);
  c.input("x", DType::kF32, {"4"});
  c.initializer("s", i64_tensor({1}, {0})).initializer("e", i64_tensor({1}, {2})).initializer("a", i64_tensor({1}, {1}));
  c.node("Slice", {"x", "s", "e", "a"}, {"y"}).output("y");
  EXPECT_NE(build_error(c).find("axis 1 is out of range"), std::string::npos) << build_error(c);
}

}  // namespace
}  // namespace kiln
