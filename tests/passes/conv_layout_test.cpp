// conv_layout alone: small conv nets (odd channels, strides, groups, residual chains, a conv output that is a
// graph output or read twice) and ResNet-50's fused graph go channels-last; the graph after the pass computes
// what it did before on the CPU reference (which runs FusedConv NHWC), and the Transposes that remain are
// counted: only where something other than a 2-D FusedConv reads the activations.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ops/fused_conv.h"
#include "ops/op.h"
#include "passes/convert_precision.h"
#include "passes/pass.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"
#include "support/skeleton.h"
#include "support/test_nets.h"

namespace kiln {
namespace {

using testing::convnext_blocks;
using testing::count_op;
using testing::import_inferred;
using testing::ModelBuilder;
using testing::random_f32;
using testing::run_cpu;

// Relative to the output's largest magnitude.
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

int count_layout(const ir::Graph& g, const char* layout) {
  int n = 0;
  for (const auto& node : g.nodes)
    n += node.op_type == "FusedConv" && node.attr_string("layout", "NCHW") == layout;
  return n;
}

// Every node's inputs are graph inputs, initializers or outputs of earlier nodes.
void expect_topological(const ir::Graph& g) {
  std::set<std::string> defined(g.inputs.begin(), g.inputs.end());
  for (const auto& [k, t] : g.initializers) defined.insert(k);
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) EXPECT_TRUE(in.empty() || defined.count(in)) << n.name << " reads " << in;
    defined.insert(n.outputs.begin(), n.outputs.end());
  }
  for (const auto& o : g.outputs) EXPECT_TRUE(defined.count(o)) << "graph output " << o;
}

// The graph as the builder has it before conv_layout (fused, every Conv a FusedConv), the same graph after
// conv_layout, both run on the CPU reference and compared.
struct Relaid {
  ir::Graph before, after;
};

Relaid relayout_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                            double tol = 1e-6) {
  Relaid r;
  r.before = import_inferred(b.bytes());
  EXPECT_TRUE(passes::fuse_conv_act(r.before).ok());
  EXPECT_TRUE(passes::eliminate_dead_code(r.before).ok());
  EXPECT_TRUE(passes::infer_shapes(r.before).ok());
  r.after = r.before;
  Status s = passes::conv_layout(r.after);
  EXPECT_TRUE(s.ok()) << s.to_string();
  expect_topological(r.after);
  EXPECT_EQ(r.after.outputs, r.before.outputs);
  EXPECT_EQ(r.after.inputs, r.before.inputs);
  auto want = run_cpu(r.before, inputs);
  auto got = run_cpu(r.after, inputs);
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) {
    EXPECT_TRUE(got.count(name)) << name;
    if (got.count(name)) expect_close(got.at(name), t, tol);
  }
  return r;
}


TEST(ConvLayout, ResidualChainPassesNhwcBetweenConvs) {
  Relaid r = relayout_and_compare(testing::conv_residual_net(), {{"x", random_f32({2, 3, 11, 9}, 9)}});
  ASSERT_EQ(count_op(r.before, "FusedConv"), 6);
  EXPECT_EQ(count_layout(r.after, "NHWC"), 6);
  EXPECT_EQ(count_layout(r.after, "NCHW"), 0);
  // One Transpose where the image comes in, one where y leaves: nothing between the convs.
  EXPECT_EQ(count_op(r.after, "Transpose"), 2);
  for (const auto& n : r.after.nodes) {
    if (n.op_type != "Transpose") continue;
    const bool in = n.inputs[0] == "x", out = n.outputs[0] == "y";
    EXPECT_TRUE(in || out) << n.name << " reads " << n.inputs[0];
    EXPECT_EQ(n.attr_ints("perm"),
              in ? (std::vector<int64_t>{0, 2, 3, 1}) : (std::vector<int64_t>{0, 3, 1, 2}));
  }
  // The weights are the permuted copies; the NCHW ones are gone.
  for (const auto& n : r.after.nodes) {
    if (n.op_type != "FusedConv") continue;
    const Tensor& w = r.after.initializers.at(n.inputs[1]);
    const Tensor& w0 = r.before.initializers.at(n.name == "stem"        ? "w_stem"
                                                : n.name == "depthwise" ? "w_dw"
                                                : n.name == "pointwise" ? "w_pw"
                                                : n.name == "strided_a" ? "w_a"
                                                : n.name == "grouped_b" ? "w_b"
                                                                        : "w_down");
    EXPECT_EQ(w.dims(), (std::vector<int64_t>{w0.dim(0), w0.dim(2), w0.dim(3), w0.dim(1)})) << n.name;
    // W'[m, i, j, c] = W[m, c, i, j], checked at the last element of each axis.
    const int64_t m = w0.dim(0) - 1, c = w0.dim(1) - 1, i = w0.dim(2) - 1, j = 0;
    EXPECT_EQ(w.data<float>()[((m * w0.dim(2) + i) * w0.dim(3) + j) * w0.dim(1) + c],
              w0.data<float>()[((m * w0.dim(1) + c) * w0.dim(2) + i) * w0.dim(3) + j])
        << n.name;
  }
  for (const char* old : {"w_stem", "w_dw", "w_pw", "w_a", "w_b", "w_down"})
    EXPECT_FALSE(r.after.initializers.count(old)) << old;
  // The residual Z of the block ends is the NHWC value another conv wrote.
  for (const auto& n : r.after.nodes)
    if (n.op_type == "FusedConv" && n.inputs.size() == 4) {
      const ir::ValueInfo* z = r.after.value(n.inputs[3]);
      ASSERT_NE(z, nullptr);
      EXPECT_EQ(z->shape.rank(), 4u);
      EXPECT_EQ(z->shape[3].value(), r.after.initializers.at(n.inputs[1]).dim(0)) << n.name;
    }
  EXPECT_EQ(r.after.values.at("y").shape.to_string(), "[batch,6,3,3]");
}

// ConvNeXt's block: depthwise conv, permute to channels-last, LayerNorm and a two-layer MLP over channels,
// permute back, residual Add outside any conv. The residual stream stays channels-last across the blocks:
// the Transposes move after the Adds and cancel against the next block's, so only the image coming in and
// the pooled features going out are transposed.
TEST(ConvLayout, ResidualAddsOutsideConvsStayChannelsLast) {
  const int64_t c = 8;
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3", "12", "12"})
      .initializer("w_stem", random_f32({c, 3, 4, 4}, 1))
      .initializer("b_stem", random_f32({c}, 2))
      .node("Conv", {"x", "w_stem", "b_stem"}, {"h0"}, "stem")
      .attr("strides", std::vector<int64_t>{4, 4});
  std::string h = "h0";
  for (int blk = 0; blk < 3; ++blk) {
    const std::string p = "b" + std::to_string(blk) + "_";
    b.initializer(p + "w_dw", random_f32({c, 1, 3, 3}, 10 + blk))
        .initializer(p + "scale", random_f32({c}, 20 + blk))
        .initializer(p + "bias", random_f32({c}, 30 + blk))
        .initializer(p + "w1", random_f32({c, 2 * c}, 40 + blk))
        .initializer(p + "w2", random_f32({2 * c, c}, 50 + blk))
        .node("Conv", {h, p + "w_dw"}, {p + "dw"}, p + "dwconv")
        .attr("group", c)
        .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
        .node("Transpose", {p + "dw"}, {p + "t"})
        .attr("perm", std::vector<int64_t>{0, 2, 3, 1})
        .node("LayerNormalization", {p + "t", p + "scale", p + "bias"}, {p + "ln"})
        .attr("axis", int64_t{-1})
        .node("MatMul", {p + "ln", p + "w1"}, {p + "m1"})
        .node("Relu", {p + "m1"}, {p + "r"})
        .node("MatMul", {p + "r", p + "w2"}, {p + "m2"})
        .node("Transpose", {p + "m2"}, {p + "back"})
        .attr("perm", std::vector<int64_t>{0, 3, 1, 2})
        .node("Add", {h, p + "back"}, {p + "out"});
    h = p + "out";
  }
  b.node("ReduceMean", {h}, {"y"}).attr("axes", std::vector<int64_t>{2, 3}).output("y");
  Relaid r = relayout_and_compare(b, {{"x", random_f32({2, 3, 12, 12}, 9)}}, 1e-5);
  EXPECT_EQ(count_layout(r.after, "NHWC"), 4);
  EXPECT_EQ(count_op(r.before, "Transpose"), 6);
  // The image into the stem, the last block's sum out to the NCHW ReduceMean.
  EXPECT_EQ(count_op(r.after, "Transpose"), 2);
  int nhwc_adds = 0;
  for (const auto& n : r.after.nodes)
    if (n.op_type == "Add") {
      const ir::ValueInfo* v = r.after.value(n.outputs[0]);
      ASSERT_NE(v, nullptr);
      nhwc_adds += v->shape.has_rank() && v->shape[3].is_static() && v->shape[3].value() == c;
    }
  EXPECT_EQ(nhwc_adds, 3);
}

// ConvNeXt's blocks (testing::convnext_blocks): the constants move with the layout, so the residual stream
// stays channels-last from block to block.

TEST(ConvLayout, LayerScaleConstantsFollowTheLayout) {
  const int64_t c = 6;
  ModelBuilder b = convnext_blocks(c);
  Relaid r = relayout_and_compare(b, {{"x", random_f32({2, 3, 10, 10}, 9)}}, 1e-5);
  EXPECT_EQ(count_layout(r.after, "NHWC"), 4);
  // Without the constants moving: a Transpose back to NCHW after each MLP and one into each next conv.
  EXPECT_EQ(count_op(r.after, "Transpose"), 2);
  int relaid = 0;
  for (const auto& [name, t] : r.after.initializers)
    if (name.find("gamma_relaid") != std::string::npos) {
      ++relaid;
      EXPECT_EQ(t.dims(), (std::vector<int64_t>{1, 1, 1, c})) << name;
    }
  EXPECT_EQ(relaid, 3);
}

// The same blocks through the builder's order: the default pipeline first (fuse_pointwise makes each block's
// scale, bias and residual Add one PointwiseChain), then conv_layout, which moves the Transposes through the
// chains too.
TEST(ConvLayout, ConvNextBlocksAfterTheDefaultPipeline) {
  const int64_t c = 6;
  ir::Graph before = import_inferred(convnext_blocks(c).bytes());
  ASSERT_TRUE(passes::run_pipeline(before, passes::default_pipeline(), nullptr).ok());
  ASSERT_GE(count_op(before, "PointwiseChain"), 3);
  ir::Graph after = before;
  Status s = passes::conv_layout(after);
  ASSERT_TRUE(s.ok()) << s.to_string();
  expect_topological(after);
  const std::map<std::string, Tensor> in = {{"x", random_f32({2, 3, 10, 10}, 9)}};
  expect_close(run_cpu(after, in).at("y"), run_cpu(before, in).at("y"), 1e-5);
  // The 2x2 stride-2 stem became a GEMM (lower_patch_conv); the three depthwise convs go channels-last.
  EXPECT_EQ(count_layout(after, "NHWC"), 3);
  // Two inside the lowered stem, its output into the first block, the last sum out to the NCHW ReduceMean:
  // none between blocks (there were eight when only Transposes of both operands could move).
  EXPECT_EQ(count_op(after, "Transpose"), 4);
  int chains_nhwc = 0;
  for (const auto& n : after.nodes)
    if (n.op_type == "PointwiseChain") {
      const ir::ValueInfo* v = after.value(n.outputs[0]);
      chains_nhwc += v && v->shape.has_rank() && v->shape[3].is_static() && v->shape[3].value() == c;
    }
  EXPECT_EQ(chains_nhwc, 3);
}

// A squeeze-excitation block between two convs (MobileNetV3's: global pool, 1x1 conv + ReLU, 1x1 conv,
// HardSigmoid, scale): the pool becomes a ReduceMean over the channels-last spatial axes, the gate and the
// scale run channels-last, and no Transpose is left between the convs.
TEST(ConvLayout, SqueezeExcitationStaysChannelsLast) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3", "9", "7"})
      .initializer("w1", random_f32({8, 3, 3, 3}, 1))
      .initializer("w_fc1", random_f32({4, 8, 1, 1}, 2))
      .initializer("b_fc1", random_f32({4}, 3))
      .initializer("w_fc2", random_f32({8, 4, 1, 1}, 4))
      .initializer("b_fc2", random_f32({8}, 5))
      .initializer("w2", random_f32({5, 8, 1, 1}, 6))
      .node("Conv", {"x", "w1"}, {"a"}, "conv1")
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Relu", {"a"}, {"a_act"})
      .node("GlobalAveragePool", {"a_act"}, {"pooled"})
      .node("Conv", {"pooled", "w_fc1", "b_fc1"}, {"f1"}, "fc1")
      .node("Relu", {"f1"}, {"f1_act"})
      .node("Conv", {"f1_act", "w_fc2", "b_fc2"}, {"f2"}, "fc2")
      .node("HardSigmoid", {"f2"}, {"gate"})
      .attr("alpha", 1.f / 6.f)
      .node("Mul", {"a_act", "gate"}, {"scaled"})
      .node("Conv", {"scaled", "w2"}, {"y"}, "conv2")
      .output("y");
  Relaid r = relayout_and_compare(b, {{"x", random_f32({2, 3, 9, 7}, 9)}}, 1e-5);
  EXPECT_EQ(count_layout(r.after, "NHWC"), 4);
  EXPECT_EQ(count_op(r.after, "GlobalAveragePool"), 0);
  EXPECT_EQ(count_op(r.after, "ReduceMean"), 1);
  EXPECT_EQ(count_op(r.after, "Transpose"), 2);  // the image in, y out
  for (const auto& n : r.after.nodes)
    if (n.op_type == "Transpose") EXPECT_TRUE(n.inputs[0] == "x" || n.outputs[0] == "y") << n.name;
}

// A conv output that is a graph output and also read by another conv, and one read by two convs and a
// non-conv op: NCHW copies exist exactly where something needs NCHW, convs read the NHWC value.
TEST(ConvLayout, OutputsAndSharedReaders) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "3", "7", "7"})
      .initializer("w1", random_f32({5, 3, 3, 3}, 1))
      .initializer("w2", random_f32({5, 5, 1, 1}, 2))
      .initializer("w3", random_f32({4, 5, 3, 3}, 3))
      .node("Conv", {"x", "w1"}, {"c1"}, "c1")
      .node("Conv", {"c1", "w2"}, {"c2"}, "c2")
      .node("Relu", {"c2"}, {"r2"})
      .node("Conv", {"r2", "w3"}, {"c3"}, "c3")
      .attr("strides", std::vector<int64_t>{2, 2})
      .node("Conv", {"r2", "w2"}, {"c4"}, "c4")
      .node("MaxPool", {"r2"}, {"p"})
      .attr("kernel_shape", std::vector<int64_t>{2, 2})
      .output("c1")
      .output("c3")
      .output("c4")
      .output("p");
  Relaid r = relayout_and_compare(b, {{"x", random_f32({1, 3, 7, 7}, 4)}});
  EXPECT_EQ(count_layout(r.after, "NHWC"), 4);
  // In: x. Out: c1, c3, c4 (graph outputs) and r2 for MaxPool.
  EXPECT_EQ(count_op(r.after, "Transpose"), 5);
  // w2 is shared: one channels-last copy.
  std::set<std::string> w_of_c2_c4;
  for (const auto& n : r.after.nodes)
    if (n.name == "c2" || n.name == "c4") w_of_c2_c4.insert(n.inputs[1]);
  EXPECT_EQ(w_of_c2_c4.size(), 1u);
  // c2, c3, c4 read the NHWC value their producer wrote, not a Transpose of a Transpose.
  std::map<std::string, const ir::Node*> producer;
  for (const auto& n : r.after.nodes) producer[n.outputs[0]] = &n;
  for (const auto& n : r.after.nodes)
    if (n.name == "c2" || n.name == "c3" || n.name == "c4") {
      ASSERT_TRUE(producer.count(n.inputs[0])) << n.name;
      EXPECT_EQ(producer.at(n.inputs[0])->op_type, "FusedConv") << n.name;
    }
}

// What the pass leaves alone: a 1-D conv, a conv whose weight is a runtime input, and a 3-D conv.
TEST(ConvLayout, SkipsNon2dAndNonConstantWeights) {
  ModelBuilder b;
  b.input("x1", DType::kF32, {"1", "2", "9"})
      .input("x2", DType::kF32, {"1", "3", "5", "5"})
      .input("w_dyn", DType::kF32, {"4", "3", "3", "3"})
      .input("x3", DType::kF32, {"1", "2", "3", "4", "5"})
      .initializer("w1", random_f32({3, 2, 3}, 1))
      .initializer("w3", random_f32({2, 2, 1, 2, 2}, 2))
      .node("Conv", {"x1", "w1"}, {"y1"}, "one_d")
      .node("Conv", {"x2", "w_dyn"}, {"y2"}, "dynamic_w")
      .node("Conv", {"x3", "w3"}, {"y3"}, "three_d")
      .output("y1")
      .output("y2")
      .output("y3");
  Relaid r = relayout_and_compare(b, {{"x1", random_f32({1, 2, 9}, 3)},
                                      {"x2", random_f32({1, 3, 5, 5}, 4)},
                                      {"w_dyn", random_f32({4, 3, 3, 3}, 5)},
                                      {"x3", random_f32({1, 2, 3, 4, 5}, 6)}});
  EXPECT_EQ(count_layout(r.after, "NCHW"), 3);
  EXPECT_EQ(count_op(r.after, "Transpose"), 0);
  EXPECT_EQ(r.after.nodes.size(), r.before.nodes.size());
}

// Transposes already in the model: pairs compose (identity -> read the source; others -> one Transpose),
// repeats of one Transpose merge, and a Transpose that names a graph output keeps its name.
TEST(ConvLayout, TransposeChainsCompose) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3", "4", "5"})
      .node("Transpose", {"x"}, {"t1"})
      .attr("perm", std::vector<int64_t>{0, 2, 3, 1})
      .node("Transpose", {"t1"}, {"t2"})
      .attr("perm", std::vector<int64_t>{0, 3, 1, 2})  // identity overall: Neg reads x
      .node("Neg", {"t2"}, {"y1"})
      .node("Transpose", {"t1"}, {"t3"})
      .attr("perm", std::vector<int64_t>{3, 2, 1, 0})  // x[1, 3, 2, 0] overall
      .node("Neg", {"t3"}, {"y2"})
      .node("Transpose", {"x"}, {"t4"})
      .attr("perm", std::vector<int64_t>{0, 2, 3, 1})  // repeats t1
      .node("Abs", {"t4"}, {"y3"})
      .node("Transpose", {"t1"}, {"y4"})
      .attr("perm", std::vector<int64_t>{0, 3, 1, 2})  // identity overall, but a graph output
      .output("y1")
      .output("y2")
      .output("y3")
      .output("y4");
  Relaid r = relayout_and_compare(b, {{"x", random_f32({2, 3, 4, 5}, 1)}});
  // t1 (read by Abs now), t3 from x, y4 from x.
  EXPECT_EQ(count_op(r.after, "Transpose"), 3);
  for (const auto& n : r.after.nodes) {
    if (n.op_type == "Neg" && n.outputs[0] == "y1") EXPECT_EQ(n.inputs[0], "x");
    if (n.op_type == "Abs") EXPECT_EQ(n.inputs[0], "t1");
    if (n.outputs[0] == "t3") {
      EXPECT_EQ(n.inputs[0], "x");
      EXPECT_EQ(n.attr_ints("perm"), (std::vector<int64_t>{1, 3, 2, 0}));
    }
    if (n.outputs[0] == "y4") {
      EXPECT_EQ(n.inputs[0], "x");
      EXPECT_EQ(n.attr_ints("perm"), (std::vector<int64_t>{0, 1, 2, 3}));
    }
  }
}

// The builder runs the pass after convert_precision: the same net in f16 (weights permuted as f16 bytes) and
// bf16, before vs after on the CPU reference.
TEST(ConvLayout, ReducedPrecisionGraphs) {
  for (DType dt : {DType::kF16, DType::kBF16}) {
    ir::Graph before = import_inferred(testing::conv_residual_net().bytes());
    ASSERT_TRUE(passes::fuse_conv_act(before).ok());
    ASSERT_TRUE(passes::eliminate_dead_code(before).ok());
    passes::PrecisionOptions opt;
    opt.target = dt;
    Status s = passes::convert_precision(before, opt);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ir::Graph after = before;
    s = passes::conv_layout(after);
    ASSERT_TRUE(s.ok()) << s.to_string();
    expect_topological(after);
    EXPECT_EQ(count_layout(after, "NHWC"), 6);
    EXPECT_EQ(count_op(after, "Transpose"), 2);
    for (const auto& n : after.nodes)
      if (n.op_type == "FusedConv") EXPECT_EQ(after.initializers.at(n.inputs[1]).dtype(), dt) << n.name;
    const std::map<std::string, Tensor> in = {{"x", random_f32({3, 3, 11, 9}, 2)}};
    auto want = run_cpu(before, in);
    auto got = run_cpu(after, in);
    ASSERT_EQ(want.size(), 1u);
    // The reference computes each conv the same way in either layout and rounds once per op: equal results.
    expect_close(got.at("y"), want.at("y"), 1e-6);
  }
}

// ResNet-50 as torch exports it, fused as the default pipeline does: all 53 convs go NHWC; Transposes remain
// only around the ops that read NCHW (the image, the stem's MaxPool, GlobalAveragePool), and the outputs are
// unchanged.
TEST(ConvLayout, ResNet50Skeleton) {
  const std::string bytes = testing::load_skeleton("resnet50");
  ir::Graph before = import_inferred(bytes);
  ASSERT_TRUE(passes::run_pipeline(before, passes::default_pipeline()).ok());
  ir::Graph after = before;
  Status s = passes::conv_layout(after);
  ASSERT_TRUE(s.ok()) << s.to_string();
  expect_topological(after);
  EXPECT_EQ(count_op(before, "FusedConv"), 53);
  EXPECT_EQ(count_layout(after, "NHWC"), 53);
  EXPECT_EQ(count_op(before, "Transpose"), 0);
  // image -> NHWC; stem -> NCHW for MaxPool; MaxPool -> NHWC; last block -> NCHW for GlobalAveragePool.
  EXPECT_EQ(count_op(after, "Transpose"), 4);
  for (const auto& n : after.nodes)
    if (n.op_type == "Transpose") {
      const bool to_nhwc = n.attr_ints("perm") == std::vector<int64_t>{0, 2, 3, 1};
      const bool to_nchw = n.attr_ints("perm") == std::vector<int64_t>{0, 3, 1, 2};
      EXPECT_TRUE(to_nhwc || to_nchw) << n.name;
    }
  // No more weight bytes than before: every NCHW weight was replaced by its permuted copy.
  size_t bytes_before = 0, bytes_after = 0;
  for (const auto& [k, t] : before.initializers) bytes_before += t.nbytes();
  for (const auto& [k, t] : after.initializers) bytes_after += t.nbytes();
  EXPECT_EQ(bytes_after, bytes_before);

  ASSERT_EQ(before.inputs.size(), 1u);
  Tensor image = random_f32({1, 3, 224, 224}, 7);
  auto want = run_cpu(before, {{before.inputs[0], image}});
  auto got = run_cpu(after, {{before.inputs[0], image}});
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, t] : want) expect_close(got.at(name), t, 1e-6);
}

// ViT-B/16: the patch embedding (one 16x16 stride-16 conv, read by a Reshape) goes NHWC with a Transpose on
// each side; the model's own Transposes (attention heads) are left as they are.
TEST(ConvLayout, VitSkeleton) {
  ir::Graph before = import_inferred(testing::load_skeleton("vit_b_16"));
  // Without lower_patch_conv, which makes this conv a GEMM: here it stands for any strided conv.
  ASSERT_TRUE(passes::run_pipeline(before, testing::pipeline_without({"lower_patch_conv"})).ok());
  ir::Graph after = before;
  Status s = passes::conv_layout(after);
  ASSERT_TRUE(s.ok()) << s.to_string();
  expect_topological(after);
  EXPECT_EQ(count_layout(after, "NHWC"), 1);
  // None of the model's own Transposes (85 after today's pipeline) chains into another: only the conv's two
  // join them.
  EXPECT_EQ(count_op(after, "Transpose"), count_op(before, "Transpose") + 2);
  ASSERT_EQ(before.inputs.size(), 1u);
  Tensor image = random_f32({1, 3, 224, 224}, 5);
  auto want = run_cpu(before, {{before.inputs[0], image}});
  auto got = run_cpu(after, {{before.inputs[0], image}});
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, t] : want) expect_close(got.at(name), t, 1e-6);
}

}  // namespace
}  // namespace kiln
