// fuse_conv_act alone on small graphs and on ResNet-50's exported graph: fused nodes are counted and the
// fused graph computes what the unfused one did (both on the CPU reference, whose FusedConv composes Conv +
// Add + act).
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/executor.h"
#include "onnx/importer.h"
#include "ops/op.h"
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

using testing::ModelBuilder;
using testing::random_f32;

// Relative to the output's largest magnitude: deep nets shrink or grow activations layer by layer.
void expect_close(const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.dims(), want.dims());
  ASSERT_EQ(got.dtype(), want.dtype());
  double scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(want.get_as_double(i)));
  int bad = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get_as_double(i), e = want.get_as_double(i);
    if (!(std::fabs(a - e) <= tol * (scale + 1e-30)) && bad++ < 5)
      ADD_FAILURE() << "[" << i << "] " << a << " vs " << e;
  }
  EXPECT_EQ(bad, 0);
}

ir::Graph fuse_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  ir::Graph g = import_inferred(b.bytes());
  auto want = run_cpu(g, inputs);
  EXPECT_TRUE(passes::fuse_conv_act(g).ok());
  EXPECT_TRUE(passes::eliminate_dead_code(g).ok());
  Status s = passes::infer_shapes(g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  auto got = run_cpu(g, inputs);
  for (const auto& [name, t] : want) {
    EXPECT_TRUE(got.count(name)) << name;
    if (got.count(name)) expect_close(got.at(name), t, 1e-6);
  }
  return g;
}

TEST(FuseConvAct, ConvReluBecomesOneFusedConv) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3", "7", "7"})
      .initializer("w", random_f32({4, 3, 3, 3}, 1))
      .initializer("b", random_f32({4}, 2))
      .node("Conv", {"x", "w", "b"}, {"c"}, "conv1")
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Relu", {"c"}, {"y"}, "relu1")
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 3, 7, 7}, 3)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  const ir::Node& f = g.nodes[0];
  EXPECT_EQ(f.op_type, "FusedConv");
  EXPECT_EQ(f.domain, ops::kKilnDomain);
  EXPECT_EQ(f.name, "conv1");
  EXPECT_EQ(f.attr_string("activation", ""), "relu");
  EXPECT_EQ(f.attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(f.outputs[0], "y");
  EXPECT_EQ(g.values.at("y").shape.to_string(), "[batch,4,7,7]");
}

// ResNet's block end, both ways round: Add(conv, residual) and Add(residual, conv), residual from another
// Conv.
TEST(FuseConvAct, ConvAddReluTakesTheResidualAsZ) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "4", "6", "6"})
      .initializer("w1", random_f32({8, 4, 1, 1}, 1))
      .initializer("w2", random_f32({8, 4, 3, 3}, 2))
      .initializer("w3", random_f32({8, 8, 3, 3}, 3))
      .node("Conv", {"x", "w1"}, {"down"}, "downsample")
      .attr("strides", std::vector<int64_t>{2, 2})
      .node("Conv", {"x", "w2"}, {"main"}, "main")
      .attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Add", {"main", "down"}, {"sum"})
      .node("Relu", {"sum"}, {"r1"})
      .node("Conv", {"r1", "w3"}, {"c3"}, "second")
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Add", {"r1", "c3"}, {"sum2"})
      .node("Relu", {"sum2"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({1, 4, 6, 6}, 4)}});
  // The Conv whose output became the residual has nothing to fuse: FusedConv(activation=none).
  EXPECT_EQ(count_op(g, "FusedConv"), 3);
  EXPECT_EQ(count_op(g, "Conv"), 0);
  EXPECT_EQ(count_op(g, "Add"), 0);
  EXPECT_EQ(count_op(g, "Relu"), 0);
  int seen = 0;
  for (const auto& n : g.nodes) {
    // The first Conv in node order absorbs the Add; the other Conv's output becomes its residual.
    if (n.name == "downsample") {
      ++seen;
      EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w1", "", "main"}));
      EXPECT_EQ(n.attr_string("activation", ""), "relu");
    }
    if (n.name == "main") {
      ++seen;
      EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w2"}));
      EXPECT_EQ(n.attr_string("activation", ""), "none");
      EXPECT_EQ(n.outputs[0], "main");
    }
    if (n.name == "second") {
      ++seen;
      EXPECT_EQ(n.inputs, (std::vector<std::string>{"r1", "w3", "", "r1"}));
    }
  }
  EXPECT_EQ(seen, 3);
}

TEST(FuseConvAct, SigmoidAndSilu) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "2", "5"})
      .initializer("w", random_f32({3, 2, 3}, 1))
      .initializer("b", random_f32({3}, 2))
      .node("Conv", {"x", "w", "b"}, {"c1"}, "c1")
      .node("Sigmoid", {"c1"}, {"y1"})
      .node("Conv", {"x", "w", "b"}, {"c2"}, "c2")
      .node("Sigmoid", {"c2"}, {"s2"})
      .node("Mul", {"s2", "c2"}, {"y2"})
      .output("y1")
      .output("y2");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({1, 2, 5}, 3)}});
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].attr_string("activation", ""), "sigmoid");
  EXPECT_EQ(g.nodes[1].attr_string("activation", ""), "silu");
  EXPECT_EQ(g.nodes[1].outputs[0], "y2");
}

// ReLU6 (Clip with constant bounds), HardSwish, and HardSwish written as Mul(y, HardSigmoid(y)) fuse;
// a HardSigmoid with other parameters and a Clip whose bound is a runtime input do not.
TEST(FuseConvAct, ClipAndHardSwish) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3", "6", "6"})
      .input("hi", DType::kF32, {})
      .initializer("w", random_f32({4, 3, 3, 3}, 1))
      .initializer("b", random_f32({4}, 2))
      .initializer("lo0", Tensor::scalar_f32(0.f))
      .initializer("hi6", Tensor::scalar_f32(6.f))
      .initializer("hi_small", Tensor::scalar_f32(0.25f))
      .node("Conv", {"x", "w", "b"}, {"c1"}, "relu6_conv")
      .node("Clip", {"c1", "lo0", "hi6"}, {"y1"})
      .node("Conv", {"x", "w", "b"}, {"c2"}, "upper_only")
      .node("Clip", {"c2", "", "hi_small"}, {"y2"})
      .node("Conv", {"x", "w", "b"}, {"c3"}, "hardswish_conv")
      .node("HardSwish", {"c3"}, {"y3"})
      .node("Conv", {"x", "w", "b"}, {"c4"}, "gated_conv")
      .node("HardSigmoid", {"c4"}, {"g4"})
      .attr("alpha", 1.f / 6.f)
      .node("Mul", {"c4", "g4"}, {"y4"})
      .node("Conv", {"x", "w", "b"}, {"c5"}, "other_gate")
      .node("HardSigmoid", {"c5"}, {"g5"})
      .node("Mul", {"c5", "g5"}, {"y5"})
      .node("Conv", {"x", "w", "b"}, {"c6"}, "runtime_bound")
      .node("Clip", {"c6", "lo0", "hi"}, {"y6"})
      .output("y1").output("y2").output("y3").output("y4").output("y5").output("y6");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 3, 6, 6}, 3)}, {"hi", Tensor::scalar_f32(0.5f)}});
  std::map<std::string, std::string> act;
  for (const auto& n : g.nodes)
    if (n.op_type == "FusedConv") act[n.name] = n.attr_string("activation", "");
  EXPECT_EQ(act["relu6_conv"], "clip");
  EXPECT_EQ(act["upper_only"], "clip");
  EXPECT_EQ(act["hardswish_conv"], "hardswish");
  EXPECT_EQ(act["gated_conv"], "hardswish");
  EXPECT_EQ(act["other_gate"], "none");     // HardSigmoid's default alpha 0.2 is not HardSwish's
  EXPECT_EQ(act["runtime_bound"], "none");  // the Clip stays
  const ir::Node* relu6 = nullptr;
  for (const auto& n : g.nodes)
    if (n.name == "relu6_conv") relu6 = &n;
  ASSERT_NE(relu6, nullptr);
  EXPECT_EQ(relu6->attr_float("clip_min", -1.f), 0.f);
  EXPECT_EQ(relu6->attr_float("clip_max", -1.f), 6.f);
  EXPECT_EQ(count_op(g, "Clip"), 1);
  EXPECT_EQ(count_op(g, "HardSigmoid"), 1);
}

TEST(FuseConvAct, IntermediatesReadElsewhereBlockFusion) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "2", "4", "4"})
      .input("bias_map", DType::kF32, {"1", "3", "1", "1"})
      .initializer("w", random_f32({3, 2, 1, 1}, 1))
      // conv output is also a graph output
      .node("Conv", {"x", "w"}, {"c1"})
      .node("Relu", {"c1"}, {"y1"})
      // conv output read by two nodes
      .node("Conv", {"x", "w"}, {"c2"})
      .node("Relu", {"c2"}, {"y2"})
      .node("Neg", {"c2"}, {"y3"})
      // the Add broadcasts its other operand: not a residual
      .node("Conv", {"x", "w"}, {"c4"})
      .node("Add", {"c4", "bias_map"}, {"a4"})
      .node("Relu", {"a4"}, {"y4"})
      // the Add's sum is read again
      .node("Conv", {"x", "w"}, {"c5"})
      .node("Add", {"c5", "x3"}, {"a5"})
      .node("Relu", {"a5"}, {"y5"})
      .output("c1")
      .output("y1")
      .output("y2")
      .output("y3")
      .output("y4")
      .output("y5")
      .output("a5");
  b.input("x3", DType::kF32, {"1", "3", "4", "4"});
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({1, 2, 4, 4}, 2)},
                                     {"bias_map", random_f32({1, 3, 1, 1}, 3)},
                                     {"x3", random_f32({1, 3, 4, 4}, 4)}});
  // Nothing fuses with an activation; every Conv still becomes FusedConv(activation=none), and c5's Add
  // (same-shape residual x3, no Relu after it as a5 is read twice) becomes its Z.
  EXPECT_EQ(count_op(g, "FusedConv"), 4);
  EXPECT_EQ(count_op(g, "Conv"), 0);
  EXPECT_EQ(count_op(g, "Relu"), 4);
  EXPECT_EQ(count_op(g, "Add"), 1);
  for (const auto& n : g.nodes) {
    if (n.op_type != "FusedConv") continue;
    EXPECT_EQ(n.attr_string("activation", ""), "none") << n.name;
    if (n.outputs[0] == "a5") EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w", "", "x3"}));
  }
  EXPECT_TRUE(find_op(g, "Add") && find_op(g, "Add")->inputs[1] == "bias_map");
}

// Conv -> Add(same-shape residual) with no Relu after it: a skip connection without activation.
TEST(FuseConvAct, ConvAddWithoutReluTakesTheResidualAsZ) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3", "7", "7"})
      .input("r", DType::kF32, {"2", "5", "4", "4"})
      .initializer("w", random_f32({5, 3, 3, 3}, 1))
      .initializer("b", random_f32({5}, 2))
      .node("Conv", {"x", "w", "b"}, {"c"}, "conv")
      .attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Add", {"r", "c"}, {"y"}, "add")
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 3, 7, 7}, 3)}, {"r", random_f32({2, 5, 4, 4}, 4)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  const ir::Node& f = g.nodes[0];
  EXPECT_EQ(f.op_type, "FusedConv");
  EXPECT_EQ(f.name, "conv");
  EXPECT_EQ(f.attr_string("activation", ""), "none");
  EXPECT_EQ(f.inputs, (std::vector<std::string>{"x", "w", "b", "r"}));
  EXPECT_EQ(f.outputs[0], "y");
}

// Convs with nothing after them to fuse (1-D, 2-D grouped, a graph output, an output read twice) become
// FusedConv(activation=none) in place, keeping their name, attributes, inputs and output.
TEST(FuseConvAct, ConvWithNothingToFuseBecomesFusedConv) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "4", "9"})
      .input("x2", DType::kF32, {"1", "4", "5", "5"})
      .initializer("w1", random_f32({3, 4, 3}, 1))
      .initializer("w2", random_f32({6, 2, 3, 3}, 2))
      .initializer("b2", random_f32({6}, 3))
      .node("Conv", {"x", "w1"}, {"y1"}, "one_d")
      .attr("dilations", std::vector<int64_t>{2})
      .node("Conv", {"x2", "w2", "b2"}, {"c2"}, "grouped")
      .attr("group", int64_t{2})
      .attr("auto_pad", std::string("SAME_UPPER"))
      .node("Neg", {"c2"}, {"y2"})
      .node("Tanh", {"c2"}, {"y3"})
      .output("y1")
      .output("y2")
      .output("y3");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({1, 4, 9}, 4)}, {"x2", random_f32({1, 4, 5, 5}, 5)}});
  EXPECT_EQ(count_op(g, "Conv"), 0);
  ASSERT_EQ(count_op(g, "FusedConv"), 2);
  for (const auto& n : g.nodes) {
    if (n.name == "one_d") {
      EXPECT_EQ(n.op_type, "FusedConv");
      EXPECT_EQ(n.attr_string("activation", ""), "none");
      EXPECT_EQ(n.attr_ints("dilations"), (std::vector<int64_t>{2}));
      EXPECT_EQ(n.outputs[0], "y1");
    }
    if (n.name == "grouped") {
      EXPECT_EQ(n.op_type, "FusedConv");
      EXPECT_EQ(n.attr_int("group", 1), 2);
      EXPECT_EQ(n.attr_string("auto_pad", ""), "SAME_UPPER");
      EXPECT_EQ(n.inputs, (std::vector<std::string>{"x2", "w2", "b2"}));
      EXPECT_EQ(n.outputs[0], "c2");
    }
  }
}

TEST(FuseConvAct, FusedGraphSurvivesExportAndImport) {
  // Engine files carry FusedConv under the kiln domain; the importer must take it back.
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "1", "3", "3"})
      .initializer("w", random_f32({1, 1, 2, 2}, 1))
      .node("Conv", {"x", "w"}, {"c"})
      .node("Relu", {"c"}, {"y"})
      .output("y");
  ModelBuilder fused;
  fused.input("x", DType::kF32, {"1", "1", "3", "3"})
      .initializer("w", random_f32({1, 1, 2, 2}, 1))
      .node("FusedConv", {"x", "w"}, {"y"})
      .domain(std::string(ops::kKilnDomain))
      .attr("activation", std::string("relu"))
      .output("y");
  ir::Graph g = import_inferred(fused.bytes());
  ir::Graph ref = import_inferred(b.bytes());
  Tensor x = random_f32({1, 1, 3, 3}, 5);
  expect_close(run_cpu(g, {{"x", x}}).at("y"), run_cpu(ref, {{"x", x}}).at("y"), 1e-6);
  // In the default domain the op is unknown: models may not use kiln's own ops.
  ModelBuilder wrong = fused;
  wrong.domain("");
  EXPECT_FALSE(onnx::import_model_bytes(wrong.bytes(), ".", "test").ok());
}

// ResNet-50 as torch exports it: 49 of 53 Convs fuse with a Relu (stem, 2 per bottleneck, and every block end
// with its residual); the 4 downsample-side Convs become FusedConv(activation=none). The fused model matches
// the unfused one on 1x3x224x224.
TEST(FuseConvAct, ResNet50Skeleton) {
  const std::string bytes = testing::load_skeleton("resnet50");
  ir::Graph plain = import_inferred(bytes);
  ASSERT_TRUE(passes::fold_shape_subgraphs(plain).ok());
  ir::Graph fused = plain;
  ASSERT_TRUE(passes::fold_batch_norm(fused).ok());
  ASSERT_TRUE(passes::fuse_conv_act(fused).ok());
  ASSERT_TRUE(passes::eliminate_dead_code(fused).ok());
  Status s = passes::infer_shapes(fused);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(count_op(fused, "FusedConv"), 53);
  EXPECT_EQ(count_op(fused, "Conv"), 0);
  EXPECT_EQ(count_op(fused, "Relu"), 0);
  EXPECT_EQ(count_op(fused, "Add"), 0);
  int with_z = 0, plain_ones = 0;
  for (const auto& n : fused.nodes) {
    with_z += n.op_type == "FusedConv" && n.inputs.size() == 4;
    plain_ones += n.op_type == "FusedConv" && n.attr_string("activation", "") == "none";
  }
  EXPECT_EQ(with_z, 16);
  EXPECT_EQ(plain_ones, 4);

  ASSERT_EQ(plain.inputs.size(), 1u);
  Tensor image = random_f32({1, 3, 224, 224}, 7);
  auto want = run_cpu(plain, {{plain.inputs[0], image}});
  auto got = run_cpu(fused, {{plain.inputs[0], image}});
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, t] : want) expect_close(got.at(name), t, 1e-5);
}

}  // namespace
}  // namespace kiln
