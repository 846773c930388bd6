// Concat and Split.
#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

TEST(ConcatOp, AxisOneWithEmptyInput) {
  ModelBuilder b(13);
  b.input("a", DType::kF32, {"2", "1"}).input("b", DType::kF32, {"2", "3"}).input("c", DType::kF32, {"2", "0"});
  b.node("Concat", {"a", "c", "b"}, {"y"}).attr("axis", int64_t{-1}).output("y");
  auto out = run(b, {{"a", f32_tensor({2, 1}, {1, 2})},
                     {"b", f32_tensor({2, 3}, {3, 4, 5, 6, 7, 8})},
                     {"c", Tensor(DType::kF32, {2, 0})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{1, 3, 4, 5, 2, 6, 7, 8}));
}

TEST(ConcatOp, SymbolicDimsAdd) {
  ModelBuilder b(13);
  b.input("a", DType::kF32, {"batch", "3"}).input("b", DType::kF32, {"batch", "seq"});
  b.node("Concat", {"a", "b"}, {"y"}).attr("axis", int64_t{1}).output("y");
  EXPECT_EQ(built_shape(b), "[batch,3+seq]");
}

// torch's Shape -> Gather -> Unsqueeze -> Concat -> Reshape: folded to a constant target at build time.
TEST(ConcatOp, ShapeChainFoldsIntoReshape) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3", "4"});
  b.initializer("one", Tensor::scalar_i64(1)).initializer("axes", i64_tensor({1}, {0}));
  b.initializer("minus1", i64_tensor({1}, {-1}));
  b.node("Shape", {"x"}, {"s"}).node("Gather", {"s", "one"}, {"d1"}).node("Unsqueeze", {"d1", "axes"}, {"u"});
  b.node("Concat", {"minus1", "u"}, {"target"}).attr("axis", int64_t{0});
  b.node("Reshape", {"x", "target"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[8,3]");
  auto out = run(b, {{"x", iota_f32({2, 3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{8, 3}));
}

// With a symbolic batch the chain cannot fold; it runs on 0-D and 1-D int64 tensors at every call.
TEST(ConcatOp, SymbolicShapeChainRunsPerCall) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"batch", "3", "4"});
  b.initializer("zero", Tensor::scalar_i64(0)).initializer("axes", i64_tensor({1}, {0}));
  b.initializer("rest", i64_tensor({1}, {12}));
  b.node("Shape", {"x"}, {"s"}).node("Gather", {"s", "zero"}, {"d0"}).node("Unsqueeze", {"d0", "axes"}, {"u"});
  b.node("Concat", {"u", "rest"}, {"target"}).attr("axis", int64_t{0});
  b.node("Reshape", {"x", "target"}, {"y"}).output("y");
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto ctx = engine->create_context();
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  for (int64_t batch : {1, 2, 5}) {
    auto out = ctx->infer({{"x", iota_f32({batch, 3, 4})}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{batch, 12}));
    EXPECT_EQ(values(out->at("y")).back(), static_cast<float>(batch * 12 - 1));
  }
}

TEST(ConcatOp, MismatchedDimIsABuildError) {
  ModelBuilder b(13);
  b.input("a", DType::kF32, {"2", "3"}).input("b", DType::kF32, {"4", "3"});
  b.node("Concat", {"a", "b"}, {"y"}).attr("axis", int64_t{1}).output("y");
  EXPECT_NE(build_error(b).find("dim 0 differs (4 vs 2)"), std::string::npos) << build_error(b);
}

TEST(SplitOp, SplitInputFromOpset13) {
  ModelBuilder b(13);
  b.input("x", DType::kI64, {"2", "3"}).initializer("split", i64_tensor({2}, {1, 2}));
  b.node("Split", {"x", "split"}, {"p", "q"}).attr("axis", int64_t{1}).output("p").output("q");
  auto out = run(b, {{"x", i64_tensor({2, 3}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<int64_t>(out->at("p")), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(values<int64_t>(out->at("q")), (std::vector<int64_t>{2, 3, 5, 6}));
}

TEST(SplitOp, EqualPartsAndAttributeForm) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"6"});
  b.node("Split", {"x"}, {"a", "b", "c"});
  b.node("Split", {"x"}, {"d", "e"}).attr("split", std::vector<int64_t>{0, 6});
  b.output("a").output("b").output("c").output("d").output("e");
  auto out = run(b, {{"x", iota_f32({6})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("b")), (std::vector<float>{2, 3}));
  EXPECT_EQ(dims_of(*out, "d"), (std::vector<int64_t>{0}));
  EXPECT_EQ(values(out->at("e")), (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST(SplitOp, NumOutputsUnevenFromOpset18) {
  ModelBuilder b(18);
  b.input("x", DType::kF32, {"7"}).node("Split", {"x"}, {"a", "b", "c"}).attr("num_outputs", int64_t{3});
  b.output("a").output("b").output("c");
  auto out = run(b, {{"x", iota_f32({7})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out, "a"), (std::vector<int64_t>{3}));
  EXPECT_EQ(values(out->at("c")), (std::vector<float>{6}));
}

TEST(SplitOp, BadSizesAreBuildErrors) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"5"}).initializer("split", i64_tensor({2}, {1, 2}));
  b.node("Split", {"x", "split"}, {"p", "q"}).output("p").output("q");
  EXPECT_NE(build_error(b).find("adds up to 3 but axis 0 of the input [5] has size 5"), std::string::npos)
      << build_error(b);
  ModelBuilder c(13);
  c.input("x", DType::kF32, {"5"}).node("Split", {"x"}, {"p", "q"}).output("p").output("q");
  EXPECT_NE(build_error(c).find("does not split into 2 equal parts"), std::string::npos) << build_error(c);
}

}  // namespace
}  // namespace kiln
