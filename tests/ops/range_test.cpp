// Range, Trilu, EyeLike and OneHot: ops that generate values from indices.
#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

ModelBuilder range_model(DType dt) {
  ModelBuilder b(11);
  b.input("s", dt, {}).input("l", dt, {}).input("d", dt, {}).node("Range", {"s", "l", "d"}, {"y"}).output("y");
  return b;
}

TEST(RangeOp, IntegerNegativeDeltaAndEmpty) {
  auto out = run(range_model(DType::kI32), {{"s", tensor<int32_t>(DType::kI32, {}, {10})},
                                            {"l", tensor<int32_t>(DType::kI32, {}, {3})},
                                            {"d", tensor<int32_t>(DType::kI32, {}, {-3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<int32_t>(out->at("y")), (std::vector<int32_t>{10, 7, 4}));
  auto empty = run(range_model(DType::kI64), {{"s", Tensor::scalar_i64(5)}, {"l", Tensor::scalar_i64(1)}, {"d", Tensor::scalar_i64(2)}});
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_EQ(dims_of(*empty), (std::vector<int64_t>{0}));
}

TEST(RangeOp, FloatAndConstantFolding) {
  auto out = run(range_model(DType::kF32), {{"s", Tensor::scalar_f32(1)}, {"l", Tensor::scalar_f32(2.1f)}, {"d", Tensor::scalar_f32(0.5f)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{1, 1.5f, 2}));
  ModelBuilder b(11);
  b.initializer("s", Tensor::scalar_i64(0)).initializer("l", Tensor::scalar_i64(7)).initializer("d", Tensor::scalar_i64(2));
  b.node("Range", {"s", "l", "d"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[4]");
}

TEST(RangeOp, ZeroDeltaIsABuildError) {
  ModelBuilder b(11);
  b.initializer("s", Tensor::scalar_i64(0)).initializer("l", Tensor::scalar_i64(7)).initializer("d", Tensor::scalar_i64(0));
  b.input("x", DType::kI64, {}).node("Add", {"x", "s"}, {"x2"}).node("Range", {"s", "l", "d"}, {"y"}).output("y").output("x2");
  EXPECT_NE(build_error(b).find("delta is 0"), std::string::npos) << build_error(b);
}

TEST(TriluOp, UpperAndLowerWithK) {
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"3", "4"}).initializer("k", Tensor::scalar_i64(1));
  b.node("Trilu", {"x", "k"}, {"u"}).node("Trilu", {"x", "k"}, {"l"}).attr("upper", int64_t{0});
  b.node("Trilu", {"x"}, {"d"}).output("u").output("l").output("d");
  auto out = run(b, {{"x", iota_f32({3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  std::vector<float> u, l, d;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) {
      const float v = static_cast<float>(i * 4 + j);
      u.push_back(j - i >= 1 ? v : 0);
      l.push_back(j - i <= 1 ? v : 0);
      d.push_back(j - i >= 0 ? v : 0);
    }
  EXPECT_EQ(values(out->at("u")), u);
  EXPECT_EQ(values(out->at("l")), l);
  EXPECT_EQ(values(out->at("d")), d);
}

TEST(TriluOp, VectorIsABuildError) {
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"3"}).node("Trilu", {"x"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("input must be at least 2-D, got [3]"), std::string::npos) << build_error(b);
}

TEST(EyeLikeOp, OffDiagonalWithDtype) {
  ModelBuilder b(9);
  b.input("x", DType::kF32, {"3", "2"}).node("EyeLike", {"x"}, {"y"}).attr("k", int64_t{-1}).attr("dtype", int64_t{7});
  b.output("y");
  auto out = run(b, {{"x", iota_f32({3, 2})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dtype(), DType::kI64);
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{0, 0, 1, 0, 0, 1}));
}

TEST(OneHotOp, AxisZeroNegativeAndOutOfRange) {
  ModelBuilder b(11);
  b.input("i", DType::kI64, {"3"}).initializer("depth", Tensor::scalar_f32(3)).initializer("v", f32_tensor({2}, {-1, 5}));
  b.node("OneHot", {"i", "depth", "v"}, {"y"}).attr("axis", int64_t{0}).output("y");
  EXPECT_EQ(built_shape(b), "[3,3]");
  auto out = run(b, {{"i", i64_tensor({3}, {0, -1, 7})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // y[d, n] = on where i[n] == d
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{5, -1, -1, -1, -1, -1, -1, 5, -1}));
}

TEST(OneHotOp, BadValuesIsABuildError) {
  ModelBuilder b(11);
  b.input("i", DType::kI64, {"3"}).initializer("depth", Tensor::scalar_i64(3)).initializer("v", f32_tensor({3}, {0, 1, 2}));
  b.node("OneHot", {"i", "depth", "v"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("values must be [off_value, on_value]"), std::string::npos) << build_error(b);
}

}  // namespace
}  // namespace kiln
