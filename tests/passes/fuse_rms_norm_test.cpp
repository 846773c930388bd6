// fuse_rms_norm alone: RMSNorm written out (Pow/Mul square, ReduceMean over the last axis, + eps, Sqrt,
// Reciprocal+Mul or Div, optional weight) becomes one RMSNormalization computing what the chain did; chains
// with another reader, another axis or an unknown width stay as they are.
#include <gtest/gtest.h>

#include <cmath>

#include "passes/pass.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using namespace testing;  // graph_test_util.h, model_builder.h

ir::Graph fuse_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  return testing::pass_keeps_outputs(b.bytes(), passes::fuse_rms_norm, inputs, 2e-6);
}

// LLaMA's spelling at opset 18: x * Reciprocal(Sqrt(ReduceMean(Pow(x, 2), axes=[-1]) + eps)) * w.
ModelBuilder llama_form(const std::string& width = "7") {
  ModelBuilder b(18);
  b.input("x", DType::kF32, {"batch", "3", width})
      .initializer("two", f32_tensor({}, {2.f}))
      .initializer("axes", i64_tensor({1}, {-1}))
      .initializer("eps", f32_tensor({}, {1e-6f}))
      .initializer("w", random_f32({7}, 4))
      .node("Pow", {"x", "two"}, {"sq"})
      .node("ReduceMean", {"sq", "axes"}, {"ms"})
      .attr("keepdims", int64_t{1})
      .node("Add", {"ms", "eps"}, {"mse"})
      .node("Sqrt", {"mse"}, {"rt"})
      .node("Reciprocal", {"rt"}, {"inv"})
      .node("Mul", {"x", "inv"}, {"n"})
      .node("Mul", {"w", "n"}, {"y"}, "norm_out")
      .output("y", DType::kF32, {"batch", "3", width});
  return b;
}

TEST(FuseRmsNorm, LlamaFormWithWeight) {
  ir::Graph g = fuse_and_compare(llama_form(), {{"x", random_f32({2, 3, 7}, 1)}});
  ASSERT_EQ(count_op(g, "RMSNormalization"), 1);
  EXPECT_EQ(g.nodes.size(), 1u) << "the whole chain is one node";
  const ir::Node* n = find_op(g, "RMSNormalization");
  EXPECT_EQ(n->name, "norm_out");
  EXPECT_EQ(n->inputs, (std::vector<std::string>{"x", "w"}));
  EXPECT_FLOAT_EQ(n->attr_float("epsilon", 0), 1e-6f);
  EXPECT_EQ(n->attr_int("axis", 0), -1);
}

// T5's spelling at opset 13: x / Sqrt(ReduceMean(x * x, axes attribute) + eps), no weight.
TEST(FuseRmsNorm, DivFormWithoutWeightGetsOnes) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"4", "5"})
      .initializer("eps", f32_tensor({}, {1e-5f}))
      .node("Mul", {"x", "x"}, {"sq"})
      .node("ReduceMean", {"sq"}, {"ms"})
      .attr("axes", std::vector<int64_t>{1})
      .node("Add", {"eps", "ms"}, {"mse"})
      .node("Sqrt", {"mse"}, {"rt"})
      .node("Div", {"x", "rt"}, {"y"})
      .output("y", DType::kF32, {"4", "5"});
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({4, 5}, 2)}});
  ASSERT_EQ(count_op(g, "RMSNormalization"), 1);
  const ir::Node* n = find_op(g, "RMSNormalization");
  ASSERT_TRUE(g.is_constant(n->inputs[1]));
  const Tensor& ones = g.initializers.at(n->inputs[1]);
  ASSERT_EQ(ones.dims(), (std::vector<int64_t>{5}));
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(ones.data<float>()[i], 1.f);
}

TEST(FuseRmsNorm, IntermediateReadElsewhereStays) {
  ModelBuilder b = llama_form();
  b.output("ms");  // the mean square is also a graph output
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 3, 7}, 3)}});
  EXPECT_EQ(count_op(g, "RMSNormalization"), 0);
  EXPECT_EQ(count_op(g, "ReduceMean"), 1);
}

TEST(FuseRmsNorm, OtherAxisOrUnknownWidthStays) {
  {
    ModelBuilder b(13);
    b.input("x", DType::kF32, {"4", "5"})
        .initializer("eps", f32_tensor({}, {1e-5f}))
        .node("Mul", {"x", "x"}, {"sq"})
        .node("ReduceMean", {"sq"}, {"ms"})
        .attr("axes", std::vector<int64_t>{0})  // over rows, not the last axis
        .node("Add", {"ms", "eps"}, {"mse"})
        .node("Sqrt", {"mse"}, {"rt"})
        .node("Div", {"x", "rt"}, {"y"})
        .output("y", DType::kF32, {"4", "5"});
    ir::Graph g = fuse_and_compare(b, {{"x", random_f32({4, 5}, 5)}});
    EXPECT_EQ(count_op(g, "RMSNormalization"), 0);
  }
  {
    // A symbolic last dim: the weight cannot be checked against it.
    ir::Graph g = fuse_and_compare(llama_form("hidden"), {{"x", random_f32({2, 3, 7}, 6)}});
    EXPECT_EQ(count_op(g, "RMSNormalization"), 0);
  }
}

TEST(FuseRmsNorm, InDefaultPipeline) {
  ir::Graph g = import_inferred(llama_form().bytes());
  ASSERT_TRUE(passes::run_pipeline(g, passes::default_pipeline(), nullptr).ok());
  EXPECT_EQ(count_op(g, "RMSNormalization"), 1);
  EXPECT_EQ(count_op(g, "PointwiseChain"), 0) << "the norm is matched before the pointwise fusion takes it apart";
}

}  // namespace
}  // namespace kiln
