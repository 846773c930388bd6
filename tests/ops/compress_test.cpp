// Compress, NonZero and ReverseSequence.
#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

Tensor bools(std::vector<int64_t> dims, const std::vector<uint8_t>& v) { return tensor<uint8_t>(DType::kBool, dims, v); }

TEST(CompressOp, AlongAxisWithShortCondition) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"2", "3"}).input("c", DType::kBool, {"?"});
  b.node("Compress", {"x", "c"}, {"y"}).attr("axis", int64_t{-1}).output("y");
  EXPECT_EQ(built_shape(b), "[2,?]");
  auto out = run(b, {{"x", iota_f32({2, 3})}, {"c", bools({2}, {0, 1})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{1, 4}));
}

TEST(CompressOp, FlattenedWithoutAxisAndConstantCondition) {
  ModelBuilder b(11);
  b.input("x", DType::kI64, {"2", "2"}).initializer("c", bools({4}, {1, 0, 0, 1}));
  b.node("Compress", {"x", "c"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[2]");
  auto out = run(b, {{"x", i64_tensor({2, 2}, {5, 6, 7, 8})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{5, 8}));
}

TEST(CompressOp, TooLongConditionIsABuildError) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"2"}).initializer("c", bools({3}, {1, 0, 1}));
  b.node("Compress", {"x", "c"}, {"y"}).attr("axis", int64_t{0}).output("y");
  EXPECT_NE(build_error(b).find("the condition has 3 entries but the compressed axis has only 2"), std::string::npos)
      << build_error(b);
}

TEST(NonZeroOp, CoordinatesInRowMajorOrder) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"}).node("NonZero", {"x"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[2,?]");
  auto out = run(b, {{"x", f32_tensor({2, 3}, {0, 1, 0, -2, 0, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{0, 1, 1, 1, 0, 2}));
  auto none = run(b, {{"x", Tensor(DType::kF32, {2, 3})}});
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_EQ(dims_of(*none), (std::vector<int64_t>{2, 0}));
}

TEST(ReverseSequenceOp, TimeMajorColumns) {
  ModelBuilder b(10);
  b.input("x", DType::kF32, {"3", "2"}).input("l", DType::kI64, {"2"});
  b.node("ReverseSequence", {"x", "l"}, {"y"}).output("y");  // time_axis 0, batch_axis 1
  auto out = run(b, {{"x", iota_f32({3, 2})}, {"l", i64_tensor({2}, {3, 1})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // x = [[0,1],[2,3],[4,5]]: column 0 reversed over 3 steps, column 1 over 1 step.
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{4, 1, 2, 3, 0, 5}));
}

TEST(ReverseSequenceOp, BatchMajorRowsAndLengthCheck) {
  ModelBuilder b(10);
  b.input("x", DType::kF32, {"2", "3"}).input("l", DType::kI64, {"2"});
  b.node("ReverseSequence", {"x", "l"}, {"y"}).attr("time_axis", int64_t{1}).attr("batch_axis", int64_t{0}).output("y");
  auto out = run(b, {{"x", iota_f32({2, 3})}, {"l", i64_tensor({2}, {2, 0})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{1, 0, 2, 3, 4, 5}));
  auto bad = run(b, {{"x", iota_f32({2, 3})}, {"l", i64_tensor({2}, {4, 0})}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("sequence_lens[0] = 4 is outside [0, 3]"), std::string::npos)
      << bad.status().message();
  ModelBuilder c(10);
  c.input("x", DType::kF32, {"2", "3"}).input("l", DType::kI64, {"2"});
  c.node("ReverseSequence", {"x", "l"}, {"y"}).output("y");  // batch axis 1 has 3 entries
  EXPECT_NE(build_error(c).find("must have one entry per batch entry"), std::string::npos) << build_error(c);
}

}  // namespace
}  // namespace kiln
