// Each pass alone on a small graph.
#include <gtest/gtest.h>

#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "support/graph_test_util.h"

namespace kiln {
namespace {

using testing::count_op;

using testing::i64_tensor;
using testing::ModelBuilder;

ir::Graph import(const ModelBuilder& b) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return std::move(*g);
}

TEST(InferShapes, PropagatesSymbolicDims) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"})
      .input("w", DType::kF32, {"4", "8"})
      .node("MatMul", {"x", "w"}, {"y"})
      .node("Relu", {"y"}, {"z"})
      .output("z");
  ir::Graph g = import(b);
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  EXPECT_EQ(g.values["z"].shape.to_string(), "[batch,8]");
  EXPECT_EQ(g.values["z"].dtype, DType::kF32);
}

TEST(InferShapes, DimMismatchNamesNodeAndShapes) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"})
      .input("w", DType::kF32, {"5", "8"})
      .node("MatMul", {"x", "w"}, {"y"}, "proj")
      .output("y");
  ir::Graph g = import(b);
  Status s = passes::infer_shapes(g);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("node 'proj' (MatMul)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("K=4"), std::string::npos) << s.message();
}

TEST(InferShapes, DeclaredDtypeMismatchIsReported) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"}).node("Relu", {"x"}, {"y"}, "r").output("y", DType::kI64, {"3"});
  ir::Graph g = import(b);
  Status s = passes::infer_shapes(g);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("dtype mismatch"), std::string::npos) << s.message();
}

TEST(InferShapes, BinaryDtypeMismatch) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"}).input("y", DType::kI64, {"3"}).node("Add", {"x", "y"}, {"z"}, "add").output("z");
  ir::Graph g = import(b);
  Status s = passes::infer_shapes(g);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is i64 but input 0 is f32"), std::string::npos) << s.message();
}

TEST(FoldConstants, FoldsConstantSubgraphAndKeepsDynamicPart) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2"})
      .initializer("a", testing::f32_tensor({2}, {1, 2}))
      .initializer("c", testing::f32_tensor({2}, {10, 20}))
      .node("Add", {"a", "c"}, {"ac"})
      .node("Mul", {"ac", "x"}, {"y"})
      .output("y");
  ir::Graph g = import(b);
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  ASSERT_TRUE(passes::fold_constants(g).ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "Mul");
  ASSERT_TRUE(g.is_constant("ac"));
  EXPECT_FLOAT_EQ(g.initializers["ac"].data<float>()[1], 22.f);
}

TEST(FoldConstants, ConstantNodeBecomesInitializer) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2"})
      .node("Constant", {}, {"k"})
      .attr("value", testing::f32_tensor({2}, {3, 4}))
      .node("Add", {"x", "k"}, {"y"})
      .output("y");
  ir::Graph g = import(b);
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  ASSERT_TRUE(passes::fold_constants(g).ok());
  EXPECT_EQ(count_op(g, "Constant"), 0);
  EXPECT_FLOAT_EQ(g.initializers.at("k").data<float>()[1], 4.f);
}

TEST(FoldShapes, StaticShapeBecomesConstantDynamicStays) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"})
      .node("Shape", {"x"}, {"s_all"}, "shape_all")
      .node("Shape", {"x"}, {"s_tail"}, "shape_tail")
      .attr("start", int64_t{1})
      .output("s_all")
      .output("s_tail");
  ir::Graph g = import(b);
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  ASSERT_TRUE(passes::fold_shapes(g).ok());
  EXPECT_FALSE(g.is_constant("s_all"));  // batch is dynamic
  ASSERT_TRUE(g.is_constant("s_tail"));
  EXPECT_EQ(g.initializers["s_tail"].to_int_vector(), std::vector<int64_t>{4});
  EXPECT_EQ(count_op(g, "Shape"), 1);
}

TEST(RemoveIdentities, RewiresConsumers) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"})
      .node("Identity", {"x"}, {"a"})
      .node("Dropout", {"a"}, {"b"})
      .node("Relu", {"b"}, {"y"})
      .output("y");
  ir::Graph g = import(b);
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  ASSERT_TRUE(passes::remove_identities(g).ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
}

TEST(RemoveIdentities, KeepsIdentityThatProducesGraphOutput) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"}).node("Identity", {"x"}, {"y"}).output("y");
  ir::Graph g = import(b);
  ASSERT_TRUE(passes::remove_identities(g).ok());
  EXPECT_EQ(g.nodes.size(), 1u);
}

TEST(EliminateDeadCode, DropsUnusedNodesAndWeights) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"})
      .initializer("unused_w", testing::f32_tensor({3}, {1, 2, 3}))
      .node("Mul", {"x", "unused_w"}, {"dead"})
      .node("Relu", {"x"}, {"y"})
      .output("y");
  ir::Graph g = import(b);
  ASSERT_TRUE(passes::eliminate_dead_code(g).ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "Relu");
  EXPECT_FALSE(g.is_constant("unused_w"));
}

TEST(Pipeline, ReportsProgressPerPass) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"}).node("Relu", {"x"}, {"y"}).output("y");
  ir::Graph g = import(b);
  std::vector<std::string> seen;
  ASSERT_TRUE(passes::run_pipeline(g, passes::default_pipeline(), [&](std::string_view s) { seen.emplace_back(s); }).ok());
  EXPECT_GE(seen.size(), 4u);
  EXPECT_EQ(seen[0], "pass infer_shapes");
}

}  // namespace
}  // namespace kiln
