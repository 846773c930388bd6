// ScatterElements, Scatter (opset 9-10) and ScatterND.
#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

TEST(ScatterElementsOp, AxisOneWithNegativeIndices) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"}).input("i", DType::kI64, {"2", "1"}).input("u", DType::kF32, {"2", "1"});
  b.node("ScatterElements", {"x", "i", "u"}, {"y"}).attr("axis", int64_t{1}).output("y");
  auto out = run(b, {{"x", iota_f32({2, 3})}, {"i", i64_tensor({2, 1}, {-1, 0})}, {"u", f32_tensor({2, 1}, {9, 8})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{0, 1, 9, 8, 4, 5}));
}

TEST(ScatterElementsOp, AddReductionAccumulatesDuplicates) {
  ModelBuilder b(16);
  b.input("x", DType::kI64, {"3"}).input("i", DType::kI64, {"3"}).input("u", DType::kI64, {"3"});
  b.node("ScatterElements", {"x", "i", "u"}, {"y"}).attr("reduction", std::string("add")).output("y");
  auto out = run(b, {{"x", i64_tensor({3}, {1, 1, 1})}, {"i", i64_tensor({3}, {2, 2, 0})}, {"u", i64_tensor({3}, {5, 6, 7})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{8, 1, 12}));
}

TEST(ScatterOp, DeprecatedNameAtOpset10) {
  ModelBuilder b(10);
  b.input("x", DType::kF32, {"1", "5"}).input("i", DType::kI64, {"1", "2"}).input("u", DType::kF32, {"1", "2"});
  b.node("Scatter", {"x", "i", "u"}, {"y"}).attr("axis", int64_t{1}).output("y");
  auto out = run(b, {{"x", Tensor(DType::kF32, {1, 5})}, {"i", i64_tensor({1, 2}, {1, 3})}, {"u", f32_tensor({1, 2}, {1.5f, 2.5f})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{0, 1.5f, 0, 2.5f, 0}));
}

TEST(ScatterNDOp, RowsWithMulReduction) {
  ModelBuilder b(16);
  b.input("x", DType::kF32, {"3", "2"}).input("i", DType::kI64, {"2", "1"}).input("u", DType::kF32, {"2", "2"});
  b.node("ScatterND", {"x", "i", "u"}, {"y"}).attr("reduction", std::string("mul")).output("y");
  auto out = run(b, {{"x", iota_f32({3, 2})}, {"i", i64_tensor({2, 1}, {2, 2})}, {"u", f32_tensor({2, 2}, {2, 3, 10, 10})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{0, 1, 2, 3, 80, 150}));
}

TEST(ScatterNDOp, ElementsOfHalfData) {
  ModelBuilder b(13);
  b.input("x", DType::kF16, {"2", "2"}).input("i", DType::kI64, {"1", "2"}).input("u", DType::kF16, {"1"});
  b.node("ScatterND", {"x", "i", "u"}, {"y"}).output("y");
  Tensor x = tensor<uint16_t>(DType::kF16, {2, 2}, {0x3c00, 0x3c00, 0x3c00, 0x3c00});
  auto out = run(b, {{"x", x}, {"i", i64_tensor({1, 2}, {1, 0})}, {"u", tensor<uint16_t>(DType::kF16, {1}, {0x4000})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<uint16_t>(out->at("y")), (std::vector<uint16_t>{0x3c00, 0x3c00, 0x4000, 0x3c00}));
}

TEST(ScatterOps, ShapeMismatchesAreBuildErrors) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"3", "2"}).input("i", DType::kI64, {"2", "1"}).input("u", DType::kF32, {"2", "3"});
  b.node("ScatterND", {"x", "i", "u"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("updates [2,3] must have shape [2,2]"), std::string::npos) << build_error(b);
  ModelBuilder c(13);
  c.input("x", DType::kF32, {"3", "2"}).input("i", DType::kI64, {"2", "1"}).input("u", DType::kF32, {"2", "2"});
  c.node("ScatterElements", {"x", "i", "u"}, {"y"}).output("y");
  EXPECT_NE(build_error(c).find("updates [2,2] must have the shape of the indices [2,1]"), std::string::npos)
      << build_error(c);
}

}  // namespace
}  // namespace kiln
