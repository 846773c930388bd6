// fuse_gelu alone: the erf and tanh spellings of GELU become one Gelu node that computes what the chain did;
// chains with another reader, a graph output inside or a wrong constant stay as they are.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/executor.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "support/skeleton.h"
#include "support/graph_test_util.h"

namespace kiln {
namespace {

using testing::import_inferred;
using testing::count_op;
using testing::find_op;
using testing::run_cpu;

using testing::f32_tensor;
using testing::ModelBuilder;
using testing::random_f32;

// Inputs spread over [-4, 4): both tails of GELU and the curved middle.
Tensor spread_input(std::vector<int64_t> dims, uint64_t seed) {
  Tensor t = random_f32(std::move(dims), seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] *= 4.f;
  return t;
}

// Runs fuse_gelu and checks the outputs against the unfused graph's (the chain rounds to f32 at every step,
// Gelu once: a few ulps apart).
ir::Graph fuse_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  return testing::pass_keeps_outputs(b.bytes(), passes::fuse_gelu, inputs, 1e-6);
}

// 0.5 * x * (1 + erf(x / sqrt(2))), torch's older exporters' order: ((x * (1 + erf)) * 0.5).
ModelBuilder erf_div_form() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "7"})
      .initializer("sqrt2", f32_tensor({}, {1.41421356f}))
      .initializer("one", f32_tensor({}, {1.f}))
      .initializer("half", f32_tensor({}, {0.5f}))
      .node("Div", {"x", "sqrt2"}, {"u"})
      .node("Erf", {"u"}, {"e"})
      .node("Add", {"e", "one"}, {"p"})
      .node("Mul", {"x", "p"}, {"xp"})
      .node("Mul", {"xp", "half"}, {"y"}, "gelu_out")
      .node("Relu", {"y"}, {"z"})
      .output("z");
  return b;
}

TEST(FuseGelu, ErfDivFormBecomesGelu) {
  ir::Graph g = fuse_and_compare(erf_div_form(), {{"x", spread_input({3, 7}, 1)}});
  EXPECT_EQ(count_op(g, "Gelu"), 1);
  EXPECT_EQ(count_op(g, "Erf"), 0);
  EXPECT_EQ(count_op(g, "Mul"), 0);
  EXPECT_EQ(count_op(g, "Div"), 0);
  const ir::Node* gelu = find_op(g, "Gelu");
  ASSERT_NE(gelu, nullptr);
  EXPECT_EQ(gelu->attr_string("approximate", "?"), "none");
  EXPECT_EQ(gelu->inputs, std::vector<std::string>{"x"});
  EXPECT_EQ(gelu->outputs, std::vector<std::string>{"y"});
  EXPECT_EQ(gelu->name, "gelu_out");
}

TEST(FuseGelu, ErfMulFormWithHalfXFirst) {
  // (0.5 * x) * (1 + erf(x * 0.7071)), 1-element [1] constants.
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "5"})
      .initializer("inv_sqrt2", f32_tensor({1}, {0.70710678f}))
      .initializer("one", f32_tensor({1}, {1.f}))
      .initializer("half", f32_tensor({1}, {0.5f}))
      .node("Mul", {"half", "x"}, {"hx"})
      .node("Mul", {"x", "inv_sqrt2"}, {"u"})
      .node("Erf", {"u"}, {"e"})
      .node("Add", {"one", "e"}, {"p"})
      .node("Mul", {"p", "hx"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread_input({2, 5}, 2)}});
  EXPECT_EQ(count_op(g, "Gelu"), 1);
  EXPECT_EQ(g.nodes.size(), 1u);
}

// GPT-2 as torch 2.11 exports it: 0.5*x, Pow(x,3)*0.044715, x + ·, *sqrt(2/pi), Tanh, +1, product.
ModelBuilder tanh_pow_form() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "seq", "6"})
      .initializer("half", f32_tensor({}, {0.5f}))
      .initializer("three", f32_tensor({}, {3.f}))
      .initializer("c", f32_tensor({}, {0.044715f}))
      .initializer("s", f32_tensor({}, {0.7978845608f}))
      .initializer("one", f32_tensor({}, {1.f}))
      .node("Mul", {"x", "half"}, {"hx"})
      .node("Pow", {"x", "three"}, {"x3"})
      .node("Mul", {"x3", "c"}, {"cx3"})
      .node("Add", {"x", "cx3"}, {"inner"})
      .node("Mul", {"inner", "s"}, {"v"})
      .node("Tanh", {"v"}, {"t"})
      .node("Add", {"t", "one"}, {"p"})
      .node("Mul", {"hx", "p"}, {"y"})
      .output("y");
  return b;
}

TEST(FuseGelu, TanhPowFormBecomesTanhGelu) {
  ir::Graph g = fuse_and_compare(tanh_pow_form(), {{"x", spread_input({2, 3, 6}, 3)}});
  EXPECT_EQ(g.nodes.size(), 1u);
  const ir::Node* gelu = find_op(g, "Gelu");
  ASSERT_NE(gelu, nullptr);
  EXPECT_EQ(gelu->attr_string("approximate", "?"), "tanh");
  EXPECT_EQ(g.values.at("y").shape.to_string(), "[batch,seq,6]");
}

TEST(FuseGelu, TanhCubeByMulsAndHalfLast) {
  // ((x * (1 + tanh(s * (0.044715 * (x*x)*x + x)))) / 2
  ModelBuilder b;
  b.input("x", DType::kF32, {"4", "3"})
      .initializer("two", f32_tensor({}, {2.f}))
      .initializer("c", f32_tensor({}, {0.044715f}))
      .initializer("s", f32_tensor({}, {0.7978845608f}))
      .initializer("one", f32_tensor({}, {1.f}))
      .node("Mul", {"x", "x"}, {"x2"})
      .node("Mul", {"x2", "x"}, {"x3"})
      .node("Mul", {"c", "x3"}, {"cx3"})
      .node("Add", {"cx3", "x"}, {"inner"})
      .node("Mul", {"s", "inner"}, {"v"})
      .node("Tanh", {"v"}, {"t"})
      .node("Add", {"t", "one"}, {"p"})
      .node("Mul", {"p", "x"}, {"xp"})
      .node("Div", {"xp", "two"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread_input({4, 3}, 4)}});
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(count_op(g, "Gelu"), 1);
}

TEST(FuseGelu, IntermediateWithAnotherReaderIsLeftAlone) {
  ModelBuilder b = erf_div_form();
  b.node("Neg", {"e"}, {"side"}).output("side");  // erf(x/sqrt2) is read outside the chain
  ir::Graph g = fuse_and_compare(b, {{"x", spread_input({3, 7}, 5)}});
  EXPECT_EQ(count_op(g, "Gelu"), 0);
  EXPECT_EQ(count_op(g, "Erf"), 1);
}

TEST(FuseGelu, IntermediateGraphOutputIsLeftAlone) {
  ModelBuilder b = erf_div_form();
  b.output("p");
  ir::Graph g = fuse_and_compare(b, {{"x", spread_input({3, 7}, 6)}});
  EXPECT_EQ(count_op(g, "Gelu"), 0);
}

TEST(FuseGelu, WrongConstantIsLeftAlone) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"})
      .initializer("two", f32_tensor({}, {2.f}))  // x / 2 inside erf: not GELU
      .initializer("one", f32_tensor({}, {1.f}))
      .initializer("half", f32_tensor({}, {0.5f}))
      .node("Div", {"x", "two"}, {"u"})
      .node("Erf", {"u"}, {"e"})
      .node("Add", {"e", "one"}, {"p"})
      .node("Mul", {"x", "p"}, {"xp"})
      .node("Mul", {"xp", "half"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread_input({3}, 7)}});
  EXPECT_EQ(count_op(g, "Gelu"), 0);
  EXPECT_EQ(count_op(g, "Erf"), 1);
}

TEST(FuseGelu, ConstantThatWouldBroadcastIsLeftAlone) {
  // half is [1,1]: x [3] times it is [1,3], so the chain's output is not Gelu(x)'s shape.
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"})
      .initializer("sqrt2", f32_tensor({}, {1.41421356f}))
      .initializer("one", f32_tensor({}, {1.f}))
      .initializer("half", f32_tensor({1, 1}, {0.5f}))
      .node("Div", {"x", "sqrt2"}, {"u"})
      .node("Erf", {"u"}, {"e"})
      .node("Add", {"e", "one"}, {"p"})
      .node("Mul", {"x", "p"}, {"xp"})
      .node("Mul", {"xp", "half"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread_input({3}, 8)}});
  EXPECT_EQ(count_op(g, "Gelu"), 0);
}

TEST(FuseGelu, DifferentXInProductIsLeftAlone) {
  // 0.5 * w * (1 + erf(x / sqrt2)): the outer factor is another tensor.
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"})
      .input("w", DType::kF32, {"3"})
      .initializer("sqrt2", f32_tensor({}, {1.41421356f}))
      .initializer("one", f32_tensor({}, {1.f}))
      .initializer("half", f32_tensor({}, {0.5f}))
      .node("Div", {"x", "sqrt2"}, {"u"})
      .node("Erf", {"u"}, {"e"})
      .node("Add", {"e", "one"}, {"p"})
      .node("Mul", {"w", "p"}, {"wp"})
      .node("Mul", {"wp", "half"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread_input({3}, 9)}, {"w", spread_input({3}, 10)}});
  EXPECT_EQ(count_op(g, "Gelu"), 0);
}

TEST(FuseGelu, Gpt2SkeletonHasTwelveTanhGelus) {
  auto imported = onnx::import_model_bytes(testing::load_skeleton("gpt2"), ".", "gpt2");
  ASSERT_TRUE(imported.ok()) << imported.status().to_string();
  ir::Graph g = std::move(*imported);
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  ASSERT_EQ(count_op(g, "Tanh"), 12);
  ASSERT_TRUE(passes::fuse_gelu(g).ok());
  EXPECT_EQ(count_op(g, "Gelu"), 12);
  EXPECT_EQ(count_op(g, "Tanh"), 0);
  EXPECT_EQ(count_op(g, "Pow"), 0);
  for (const auto& n : g.nodes)
    if (n.op_type == "Gelu") EXPECT_EQ(n.attr_string("approximate", "?"), "tanh") << n.name;
  EXPECT_TRUE(passes::infer_shapes(g).ok());
}

}  // namespace
}  // namespace kiln
