// Expand, Tile and Where: broadcasting and repetition.
#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

TEST(ExpandOp, BroadcastsBothWays) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"3", "1"}).initializer("shape", i64_tensor({3}, {2, 1, 4}));
  b.node("Expand", {"x", "shape"}, {"y"}).output("y");
  auto out = run(b, {{"x", f32_tensor({3, 1}, {1, 2, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(dims_of(*out), (std::vector<int64_t>{2, 3, 4}));
  std::vector<float> want;
  for (int a = 0; a < 2; ++a)
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) want.push_back(static_cast<float>(r + 1));
  EXPECT_EQ(values(out->at("y")), want);
}

TEST(ExpandOp, SymbolicInputAndIncompatibleShape) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"batch", "1"}).initializer("shape", i64_tensor({2}, {1, 5}));
  b.node("Expand", {"x", "shape"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[batch,5]");
  ModelBuilder c(13);
  c.input("x", DType::kF32, {"3"}).initializer("shape", i64_tensor({2}, {2, 4}));
  c.node("Expand", {"x", "shape"}, {"y"}).output("y");
  EXPECT_NE(build_error(c).find("cannot broadcast shapes [3] and [2,4]"), std::string::npos) << build_error(c);
}

TEST(TileOp, RepeatsAndZero) {
  ModelBuilder b(13);
  b.input("x", DType::kI64, {"2", "3"}).initializer("r", i64_tensor({2}, {2, 1})).initializer("z", i64_tensor({2}, {0, 3}));
  b.node("Tile", {"x", "r"}, {"y"}).node("Tile", {"x", "z"}, {"e"}).output("y").output("e");
  auto out = run(b, {{"x", i64_tensor({2, 3}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(dims_of(*out, "e"), (std::vector<int64_t>{0, 9}));
}

TEST(TileOp, RepeatsLengthMismatchIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"}).initializer("r", i64_tensor({1}, {2}));
  b.node("Tile", {"x", "r"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("repeats [2] has 1 entries but the input [2,3] has rank 2"), std::string::npos)
      << build_error(b);
}

TEST(WhereOp, BroadcastsAllThree) {
  ModelBuilder b(16);
  b.input("c", DType::kBool, {"2", "1"}).input("x", DType::kI32, {"3"}).input("y", DType::kI32, {});
  b.node("Where", {"c", "x", "y"}, {"out"}).output("out");
  auto out = run(b, {{"c", tensor<uint8_t>(DType::kBool, {2, 1}, {1, 0})},
                     {"x", tensor<int32_t>(DType::kI32, {3}, {1, 2, 3})},
                     {"y", tensor<int32_t>(DType::kI32, {}, {-7})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out, "out"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values<int32_t>(out->at("out")), (std::vector<int32_t>{1, 2, 3, -7, -7, -7}));
}

TEST(WhereOp, SymbolicShapesAndBadCondition) {
  ModelBuilder b(16);
  b.input("c", DType::kBool, {"batch", "1"}).input("x", DType::kF32, {"1", "seq"}).input("y", DType::kF32, {"seq"});
  b.node("Where", {"c", "x", "y"}, {"out"}).output("out");
  EXPECT_EQ(built_shape(b), "[batch,seq]");
  ModelBuilder c(16);
  c.input("c", DType::kF32, {"2"}).input("x", DType::kF32, {"2"}).input("y", DType::kF32, {"2"});
  c.node("Where", {"c", "x", "y"}, {"out"}).output("out");
  EXPECT_NE(build_error(c).find("the condition must be bool, got f32"), std::string::npos) << build_error(c);
}

}  // namespace
}  // namespace kiln
