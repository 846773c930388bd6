#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

TEST(TransposeOp, PermutesThreeDims) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3", "4"}).node("Transpose", {"x"}, {"y"}).attr("perm", std::vector<int64_t>{1, 2, 0});
  b.output("y");
  auto out = run(b, {{"x", iota_f32({2, 3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(dims_of(*out), (std::vector<int64_t>{3, 4, 2}));
  std::vector<float> want;
  for (int j = 0; j < 3; ++j)
    for (int k = 0; k < 4; ++k)
      for (int i = 0; i < 2; ++i) want.push_back(static_cast<float>(i * 12 + j * 4 + k));
  EXPECT_EQ(values(out->at("y")), want);
}

TEST(TransposeOp, DefaultReversesAndKeepsSymbols) {
  ModelBuilder b(13);
  b.input("x", DType::kI64, {"batch", "3"}).node("Transpose", {"x"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[3,batch]");
  auto out = run(b, {{"x", i64_tensor({1, 3}, {7, 8, 9})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{7, 8, 9}));
}

TEST(TransposeOp, MovesHalfBitsUnchanged) {
  ModelBuilder b(13);
  b.input("x", DType::kF16, {"2", "3"}).node("Transpose", {"x"}, {"y"}).output("y");
  Tensor x = tensor<uint16_t>(DType::kF16, {2, 3}, {0x3c00, 0x4000, 0x4200, 0x4400, 0x7e01, 0x8001});
  auto out = run(b, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dtype(), DType::kF16);
  EXPECT_EQ(values<uint16_t>(out->at("y")), (std::vector<uint16_t>{0x3c00, 0x4400, 0x4000, 0x7e01, 0x4200, 0x8001}));
}

TEST(TransposeOp, EmptyTensor) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"0", "3"}).node("Transpose", {"x"}, {"y"}).output("y");
  auto out = run(b, {{"x", Tensor(DType::kF32, {0, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{3, 0}));
}

TEST(TransposeOp, BadPermIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3", "4"}).node("Transpose", {"x"}, {"y"}).attr("perm", std::vector<int64_t>{0, 0, 1});
  b.output("y");
  EXPECT_NE(build_error(b).find("perm [0,0,1] is not a permutation of 0..2"), std::string::npos) << build_error(b);
  ModelBuilder c(13);
  c.input("x", DType::kF32, {"2", "3"}).node("Transpose", {"x"}, {"y"}).attr("perm", std::vector<int64_t>{0, 1, 2});
  c.output("y");
  EXPECT_NE(build_error(c).find("has rank 2"), std::string::npos) << build_error(c);
}

}  // namespace
}  // namespace kiln
