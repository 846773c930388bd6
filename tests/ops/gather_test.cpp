// Gather, GatherElements and GatherND.
#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

TEST(GatherOp, AxisOneWithNegativeAndMatrixIndices) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"}).input("i", DType::kI64, {"2", "2"});
  b.node("Gather", {"x", "i"}, {"y"}).attr("axis", int64_t{1}).output("y");
  auto out = run(b, {{"x", iota_f32({2, 3})}, {"i", i64_tensor({2, 2}, {0, -1, 2, 1})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(dims_of(*out), (std::vector<int64_t>{2, 2, 2}));
  // y[a, j, k] = x[a, i[j, k]]
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{0, 2, 2, 1, 3, 5, 5, 4}));
}

TEST(GatherOp, ScalarIndexOnI32IndicesGivesScalar) {
  ModelBuilder b(13);
  b.input("x", DType::kI64, {"4"}).input("i", DType::kI32, {});
  b.node("Gather", {"x", "i"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[]");
  auto out = run(b, {{"x", i64_tensor({4}, {10, 11, 12, 13})}, {"i", tensor<int32_t>(DType::kI32, {}, {-2})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_TRUE(dims_of(*out).empty());
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{12}));
}

TEST(GatherOp, OutOfRangeIndexIsAnError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"3"}).initializer("i", i64_tensor({1}, {3}));
  b.node("Gather", {"x", "i"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("index 3 is out of range for axis 0 of the data [3] (size 3)"), std::string::npos)
      << build_error(b);
  ModelBuilder c(13);
  c.input("x", DType::kF32, {"3"}).input("i", DType::kI64, {"1"}).node("Gather", {"x", "i"}, {"y"}).output("y");
  auto out = run(c, {{"x", iota_f32({3})}, {"i", i64_tensor({1}, {-4})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("index -4 is out of range"), std::string::npos) << out.status().message();
}

TEST(GatherElementsOp, AxisOne) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"}).input("i", DType::kI64, {"2", "2"});
  b.node("GatherElements", {"x", "i"}, {"y"}).attr("axis", int64_t{1}).output("y");
  auto out = run(b, {{"x", iota_f32({2, 3})}, {"i", i64_tensor({2, 2}, {2, 0, -1, 1})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{2, 0, 5, 4}));
}

TEST(GatherElementsOp, RankMismatchIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"}).input("i", DType::kI64, {"2"});
  b.node("GatherElements", {"x", "i"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("indices [2] must have the same rank as the data [2,3]"), std::string::npos)
      << build_error(b);
}

TEST(GatherNDOp, FullAndPartialIndexTuples) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"}).input("i", DType::kI64, {"2", "2"}).input("r", DType::kI64, {"1", "1"});
  b.node("GatherND", {"x", "i"}, {"y"}).node("GatherND", {"x", "r"}, {"z"}).output("y").output("z");
  auto out = run(b, {{"x", iota_f32({2, 3})}, {"i", i64_tensor({2, 2}, {1, 2, 0, -3})}, {"r", i64_tensor({1, 1}, {1})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{5, 0}));
  EXPECT_EQ(dims_of(*out, "z"), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(values(out->at("z")), (std::vector<float>{3, 4, 5}));
}

TEST(GatherNDOp, BatchDims) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "2", "2"}).input("i", DType::kI64, {"2", "1"});
  b.node("GatherND", {"x", "i"}, {"y"}).attr("batch_dims", int64_t{1}).output("y");
  auto out = run(b, {{"x", iota_f32({2, 2, 2})}, {"i", i64_tensor({2, 1}, {1, 0})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{2, 3, 4, 5}));
}

TEST(GatherNDOp, TooLongIndexTupleIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"}).input("i", DType::kI64, {"1", "3"});
  b.node("GatherND", {"x", "i"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("the last indices dim is 3 but must be in [1, 2]"), std::string::npos)
      << build_error(b);
}

}  // namespace
}  // namespace kiln
