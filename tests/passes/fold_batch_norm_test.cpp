// fold_batch_norm alone on small graphs: the folded graph has fewer nodes and computes what the original did
// (both run on the CPU reference).
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/executor.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "support/graph_test_util.h"

namespace kiln {
namespace {

using testing::count_op;
using testing::run_cpu;

using testing::f32_tensor;
using testing::ModelBuilder;
using testing::random_f32;

ir::Graph import_inferred(const ModelBuilder& b) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_TRUE(passes::infer_shapes(*g).ok());
  return std::move(*g);
}

void expect_close(const Tensor& got, const Tensor& want, double tol = 1e-5) {
  ASSERT_EQ(got.dims(), want.dims());
  ASSERT_EQ(got.dtype(), want.dtype());
  int bad = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get_as_double(i), e = want.get_as_double(i);
    if (std::fabs(a - e) > tol * (1 + std::fabs(e)) && bad++ < 5)
      ADD_FAILURE() << "[" << i << "] " << a << " vs " << e;
  }
  EXPECT_EQ(bad, 0);
}

// Runs the graph, folds (+ DCE + inference as the pipeline does), runs again and compares every output.
ir::Graph fold_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                           double tol = 1e-5) {
  ir::Graph g = import_inferred(b);
  auto want = run_cpu(g, inputs);
  EXPECT_TRUE(passes::fold_batch_norm(g).ok());
  EXPECT_TRUE(passes::eliminate_dead_code(g).ok());
  Status s = passes::infer_shapes(g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  auto got = run_cpu(g, inputs);
  for (const auto& [name, t] : want) {
    EXPECT_TRUE(got.count(name)) << name;
    if (got.count(name)) expect_close(got.at(name), t, tol);
  }
  return g;
}

Tensor positive(std::vector<int64_t> dims, uint64_t seed) {
  Tensor t = random_f32(dims, seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 0.5f + std::fabs(t.data<float>()[i]);
  return t;
}

ModelBuilder conv_bn(bool conv_bias, int64_t m = 5) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3", "7", "6"})
      .initializer("w", random_f32({m, 3, 3, 3}, 1))
      .initializer("gamma", random_f32({m}, 3))
      .initializer("beta", random_f32({m}, 4))
      .initializer("mean", random_f32({m}, 5))
      .initializer("var", positive({m}, 6));
  if (conv_bias) b.initializer("b", random_f32({m}, 2));
  b.node("Conv", {"x", "w", conv_bias ? "b" : ""}, {"c"}, "conv")
      .attr("pads", std::vector<int64_t>{1, 0, 1, 2})
      .attr("strides", std::vector<int64_t>{2, 1})
      .node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}, "bn")
      .attr("epsilon", 1e-3f)
      .output("y");
  return b;
}

TEST(FoldBatchNorm, ConvWithBiasThenBn) {
  ir::Graph g = fold_and_compare(conv_bn(true), {{"x", random_f32({2, 3, 7, 6}, 9)}});
  EXPECT_EQ(count_op(g, "BatchNormalization"), 0);
  ASSERT_EQ(count_op(g, "Conv"), 1);
  EXPECT_EQ(g.nodes[0].outputs[0], "y");
  EXPECT_EQ(g.nodes[0].name, "conv");
}

TEST(FoldBatchNorm, ConvWithoutBiasGainsOne) {
  ir::Graph g = fold_and_compare(conv_bn(false), {{"x", random_f32({2, 3, 7, 6}, 10)}});
  EXPECT_EQ(count_op(g, "BatchNormalization"), 0);
  ASSERT_EQ(g.nodes.size(), 1u);
  ASSERT_EQ(g.nodes[0].inputs.size(), 3u);
  EXPECT_TRUE(g.is_constant(g.nodes[0].inputs[2]));
}

TEST(FoldBatchNorm, SharedWeightsStayIntactForTheOtherConv) {
  ModelBuilder b = conv_bn(true);
  b.node("Conv", {"x", "w", "b"}, {"c2"}, "other").output("c2");
  ir::Graph g = fold_and_compare(b, {{"x", random_f32({2, 3, 7, 6}, 11)}});
  EXPECT_EQ(count_op(g, "BatchNormalization"), 0);
  EXPECT_EQ(count_op(g, "Conv"), 2);
  for (const auto& n : g.nodes)
    if (n.name == "other") EXPECT_EQ(n.inputs[1], "w");
}

TEST(FoldBatchNorm, MulThenAddPerChannelChainFoldsIntoOneConv) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "4", "5", "5"})
      .initializer("w", random_f32({6, 2, 3, 3}, 1))
      .initializer("s", random_f32({6, 1, 1}, 2))
      .initializer("t", random_f32({1, 6, 1, 1}, 3))
      .initializer("u", f32_tensor({1}, {0.25f}))
      .node("Conv", {"x", "w"}, {"c"}, "conv")
      .attr("group", int64_t{2})
      .attr("dilations", std::vector<int64_t>{2, 1})
      .node("Mul", {"s", "c"}, {"m"})
      .node("Add", {"m", "t"}, {"a"})
      .node("Sub", {"a", "u"}, {"y"})
      .output("y");
  ir::Graph g = fold_and_compare(b, {{"x", random_f32({1, 4, 5, 5}, 4)}});
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(count_op(g, "Conv"), 1);
}

TEST(FoldBatchNorm, DivByPerChannelConstant) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "2", "4"})
      .initializer("w", random_f32({3, 2, 2}, 1))
      .initializer("d", positive({3, 1}, 2))
      .node("Conv", {"x", "w"}, {"c"})
      .node("Div", {"c", "d"}, {"y"})
      .output("y");
  ir::Graph g = fold_and_compare(b, {{"x", random_f32({1, 2, 4}, 3)}});
  EXPECT_EQ(count_op(g, "Div"), 0);
}

TEST(FoldBatchNorm, LeavesWhatIsNotPerChannelOrNotConstant) {
  // Spatial constant, constant on the wrong side of a Sub, a Div by zero, a non-constant BN statistic.
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "2", "4", "4"})
      .input("mean_in", DType::kF32, {"3"})
      .initializer("w", random_f32({3, 2, 1, 1}, 1))
      .initializer("sp", random_f32({1, 1, 4, 4}, 2))
      .initializer("k", random_f32({3, 1, 1}, 3))
      .initializer("zero", f32_tensor({3, 1, 1}, {1.f, 0.f, 2.f}))
      .initializer("gamma", random_f32({3}, 4))
      .initializer("beta", random_f32({3}, 5))
      .initializer("var", positive({3}, 6))
      .node("Conv", {"x", "w"}, {"c1"})
      .node("Mul", {"c1", "sp"}, {"y1"})
      .node("Conv", {"x", "w"}, {"c2"})
      .node("Sub", {"k", "c2"}, {"y2"})
      .node("Conv", {"x", "w"}, {"c3"})
      .node("Div", {"c3", "zero"}, {"y3"})
      .node("Conv", {"x", "w"}, {"c4"})
      .node("BatchNormalization", {"c4", "gamma", "beta", "mean_in", "var"}, {"y4"})
      .output("y1")
      .output("y2")
      .output("y3")
      .output("y4");
  ir::Graph g = fold_and_compare(b, {{"x", random_f32({1, 2, 4, 4}, 7)}, {"mean_in", random_f32({3}, 8)}});
  EXPECT_EQ(g.nodes.size(), 8u);
}

TEST(FoldBatchNorm, ConvOutputReadElsewhereIsKept) {
  ModelBuilder b = conv_bn(true);
  b.output("c");  // the pre-BN value is also a graph output
  ir::Graph g = fold_and_compare(b, {{"x", random_f32({2, 3, 7, 6}, 12)}});
  EXPECT_EQ(count_op(g, "BatchNormalization"), 1);
}

TEST(FoldBatchNorm, HalfWeightsFoldInHalf) {
  ModelBuilder b;
  Tensor w = cpu::convert_tensor(random_f32({4, 3, 3, 3}, 1), DType::kF16);
  b.input("x", DType::kF16, {"1", "3", "5", "5"})
      .initializer("w", w)
      .initializer("gamma", cpu::convert_tensor(random_f32({4}, 2), DType::kF16))
      .initializer("beta", cpu::convert_tensor(random_f32({4}, 3), DType::kF16))
      .initializer("mean", cpu::convert_tensor(random_f32({4}, 4), DType::kF16))
      .initializer("var", cpu::convert_tensor(positive({4}, 5), DType::kF16))
      .node("Conv", {"x", "w"}, {"c"})
      .node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"})
      .output("y");
  ir::Graph g =
      fold_and_compare(b, {{"x", cpu::convert_tensor(random_f32({1, 3, 5, 5}, 6), DType::kF16)}}, 2e-2);
  EXPECT_EQ(count_op(g, "BatchNormalization"), 0);
  EXPECT_EQ(g.initializers.at(g.nodes[0].inputs[1]).dtype(), DType::kF16);
}

}  // namespace
}  // namespace kiln
