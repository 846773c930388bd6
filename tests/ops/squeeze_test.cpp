// Squeeze, Unsqueeze and Flatten: views whose shapes come from inference.
#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

TEST(SqueezeOp, AxesInputFromOpset13) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"3", "1", "7"}).initializer("axes", i64_tensor({1}, {-2}));
  b.node("Squeeze", {"x", "axes"}, {"y"}).output("y");
  auto out = run(b, {{"x", iota_f32({3, 1, 7})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(values(out->at("y"))[20], 20.f);
}

TEST(SqueezeOp, AttributeAxesBeforeOpset13AndAllOnes) {
  ModelBuilder b(11);
  b.input("x", DType::kI64, {"1", "3", "1"}).node("Squeeze", {"x"}, {"y"}).attr("axes", std::vector<int64_t>{0});
  b.node("Squeeze", {"x"}, {"z"}).output("y").output("z");
  auto out = run(b, {{"x", i64_tensor({1, 3, 1}, {4, 5, 6})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out, "y"), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(dims_of(*out, "z"), (std::vector<int64_t>{3}));
  EXPECT_EQ(values<int64_t>(out->at("z")), (std::vector<int64_t>{4, 5, 6}));
}

TEST(SqueezeOp, NonUnitAxisIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"3", "1"}).initializer("axes", i64_tensor({1}, {0}));
  b.node("Squeeze", {"x", "axes"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("cannot squeeze axis 0 of the input [3,1]: its size is 3, not 1"), std::string::npos)
      << build_error(b);
}

TEST(UnsqueezeOp, AxesInputNegativeAndUnsorted) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"batch", "3"}).initializer("axes", i64_tensor({2}, {-1, 0}));
  b.node("Unsqueeze", {"x", "axes"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[1,batch,3,1]");
  auto out = run(b, {{"x", iota_f32({2, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{1, 2, 3, 1}));
}

TEST(UnsqueezeOp, ScalarWithAttributeAxes) {
  ModelBuilder b(11);
  b.input("x", DType::kI64, {}).node("Unsqueeze", {"x"}, {"y"}).attr("axes", std::vector<int64_t>{0}).output("y");
  auto out = run(b, {{"x", Tensor::scalar_i64(42)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{1}));
  EXPECT_EQ(values<int64_t>(out->at("y"))[0], 42);
}

TEST(UnsqueezeOp, DuplicateAxisIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"3"}).initializer("axes", i64_tensor({2}, {0, -3}));
  b.node("Unsqueeze", {"x", "axes"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("name axis 0 twice"), std::string::npos) << build_error(b);
}

TEST(FlattenOp, AxesZeroRankAndNegative) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3", "5"});
  b.node("Flatten", {"x"}, {"a"}).attr("axis", int64_t{0});
  b.node("Flatten", {"x"}, {"b"}).attr("axis", int64_t{3});
  b.node("Flatten", {"x"}, {"c"}).attr("axis", int64_t{-1});
  b.output("a").output("b").output("c");
  auto out = run(b, {{"x", iota_f32({2, 3, 5})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out, "a"), (std::vector<int64_t>{1, 30}));
  EXPECT_EQ(dims_of(*out, "b"), (std::vector<int64_t>{30, 1}));
  EXPECT_EQ(dims_of(*out, "c"), (std::vector<int64_t>{6, 5}));
  EXPECT_EQ(values(out->at("c"))[29], 29.f);
}

TEST(FlattenOp, KeepsSymbolicBatch) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"batch", "3", "4"}).node("Flatten", {"x"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[batch,12]");
  ModelBuilder c(13);
  c.input("x", DType::kF32, {"2", "3"}).node("Flatten", {"x"}, {"y"}).attr("axis", int64_t{3}).output("y");
  EXPECT_NE(build_error(c).find("axis 3 is out of range for a tensor of rank 2"), std::string::npos) << build_error(c);
}

}  // namespace
}  // namespace kiln
