// fuse_attention alone: each attention form as a small graph gives the same CPU results before and after and
// holds exactly one FusedAttention; chains that must stay (extra reader, other softmax axis, scale that is
// not a constant) stay; the real skeletons fuse every layer and their fused CPU engines match the unfused
// ones.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backends/cpu/executor.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "ops/op.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "support/skeleton.h"
#include "support/graph_test_util.h"

namespace kiln {
namespace {

using testing::count_op;

using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;

constexpr float kInf = std::numeric_limits<float>::infinity();

ir::Graph import(const std::string& bytes) {
  auto g = onnx::import_model_bytes(bytes, ".", "test");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? std::move(*g) : ir::Graph();
}

const ir::Node* find_op(const ir::Graph& g, const std::string& op) {
  for (const auto& node : g.nodes)
    if (node.op_type == op) return &node;
  return nullptr;
}

std::map<std::string, Tensor> run_cpu(const ir::Graph& g, const std::map<std::string, Tensor>& inputs) {
  cpu::GraphExecutor ex(std::make_shared<const ir::Graph>(g));
  auto out = ex.run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

void expect_close(const std::map<std::string, Tensor>& want, const std::map<std::string, Tensor>& got,
                  double rtol = 1e-4, double atol = 1e-5) {
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, w] : want) {
    const Tensor& o = got.at(name);
    ASSERT_EQ(o.dims(), w.dims()) << name;
    int64_t bad = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      const double a = o.get_as_double(i), e = w.get_as_double(i);
      if (a == e || (std::isnan(a) && std::isnan(e))) continue;
      if (!(std::fabs(a - e) <= atol + rtol * std::fabs(e)) && bad++ < 5)
        ADD_FAILURE() << name << "[" << i << "]: fused " << a << " vs unfused " << e;
    }
    EXPECT_EQ(bad, 0) << name;
  }
}

// Imports the model, runs the pass (then dead-code elimination, as the pipeline does) and checks the fused
// graph's outputs against the unfused graph's. Returns the fused graph.
ir::Graph fuse_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                           int want_fused) {
  ir::Graph before = import(b.bytes());
  EXPECT_TRUE(passes::infer_shapes(before).ok());
  ir::Graph after = before;
  EXPECT_TRUE(passes::fuse_attention(after).ok());
  EXPECT_TRUE(passes::eliminate_dead_code(after).ok());
  Status st = passes::infer_shapes(after);
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(count_op(after, "FusedAttention"), want_fused);
  if (want_fused > 0) {
    EXPECT_EQ(count_op(after, "Softmax"), 0);
    const ir::Node* fa = find_op(after, "FusedAttention");
    if (fa) EXPECT_EQ(fa->domain, std::string(ops::kKilnDomain));
  } else {
    EXPECT_EQ(after.nodes.size(), before.nodes.size());
  }
  expect_close(run_cpu(before, inputs), run_cpu(after, inputs));
  return after;
}

// torch's K^T for a 4-D K: Reshape(K, [-1, S, D]) -> Transpose[0,2,1] -> Reshape([B, H, D, S]) with the shape
// operands read from Shape(K) at run time.
void torch_kt(ModelBuilder& b, const std::string& k, const std::string& kt) {
  b.node("Shape", {k}, {kt + "_shape"})
      .node("Slice", {kt + "_shape", "c_m1", "c_max"}, {kt + "_d"})
      .node("Slice", {kt + "_shape", "c_m2", "c_m1"}, {kt + "_s"})
      .node("Slice", {kt + "_shape", "c_0", "c_m2"}, {kt + "_bh"})
      .node("Concat", {"c_m1", kt + "_s", kt + "_d"}, {kt + "_t1"})
      .attr("axis", int64_t{0})
      .node("Reshape", {k, kt + "_t1"}, {kt + "_r1"})
      .node("Transpose", {kt + "_r1"}, {kt + "_tr"})
      .attr("perm", std::vector<int64_t>{0, 2, 1})
      .node("Concat", {kt + "_bh", kt + "_d", kt + "_s"}, {kt + "_t2"})
      .attr("axis", int64_t{0})
      .node("Reshape", {kt + "_tr", kt + "_t2"}, {kt});
}

void shape_constants(ModelBuilder& b) {
  b.initializer("c_m1", i64_tensor({1}, {-1}))
      .initializer("c_m2", i64_tensor({1}, {-2}))
      .initializer("c_0", i64_tensor({1}, {0}))
      .initializer("c_max", i64_tensor({1}, {std::numeric_limits<int64_t>::max()}));
}

Tensor bool_tensor(std::vector<int64_t> dims, const std::function<bool(int64_t)>& f) {
  Tensor t(DType::kBool, dims);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = f(i) ? 1 : 0;
  return t;
}

// BERT/GPT-2 as torch 2.11 exports SDPA with a bool mask: Q and K^T each scaled by sqrt(scale), the mask made
// additive by Where(bool, 0, -inf), Softmax, the IsNaN/Where guard, then P @ V.
ModelBuilder torch_sdpa_model(bool with_mask) {
  ModelBuilder b(18);
  b.input("q", DType::kF32, {"batch", "2", "seq", "8"})
      .input("k", DType::kF32, {"batch", "2", "seq", "8"})
      .input("v", DType::kF32, {"batch", "2", "seq", "8"});
  if (with_mask) b.input("mask", DType::kBool, {"batch", "1", "seq", "seq"});
  shape_constants(b);
  b.initializer("sqrt_scale", f32_tensor({}, {std::sqrt(1.f / std::sqrt(8.f))}))
      .initializer("zero", f32_tensor({}, {0.f}))
      .initializer("ninf", f32_tensor({}, {-kInf}));
  torch_kt(b, "k", "kt");
  b.node("Mul", {"q", "sqrt_scale"}, {"qs"}).node("Mul", {"kt", "sqrt_scale"}, {"kts"});
  b.node("MatMul", {"qs", "kts"}, {"scores"});
  std::string logits = "scores";
  if (with_mask) {
    b.node("Where", {"mask", "zero", "ninf"}, {"add_mask"}).node("Add", {"scores", "add_mask"}, {"masked"});
    logits = "masked";
  }
  b.node("Softmax", {logits}, {"p"})
      .attr("axis", int64_t{-1})
      .node("IsNaN", {"p"}, {"p_nan"})
      .node("Where", {"p_nan", "zero", "p"}, {"p0"})
      .node("MatMul", {"p0", "v"}, {"attn"}, "sdpa")
      .output("attn");
  return b;
}

std::map<std::string, Tensor> qkv(int64_t b, int64_t h, int64_t s, int64_t d, uint64_t seed,
                                  int64_t hk = -1) {
  if (hk < 0) hk = h;
  return {{"q", testing::random_f32({b, h, s, d}, seed)},
          {"k", testing::random_f32({b, hk, s, d}, seed + 1)},
          {"v", testing::random_f32({b, hk, s, d}, seed + 2)}};
}

TEST(FuseAttention, TorchSdpaWithBoolMaskAndNanGuard) {
  auto in = qkv(2, 2, 5, 8, 1);
  // Batch 0: padding (keys 3, 4 masked); batch 1: causal, with query row 0 masked entirely.
  in["mask"] = bool_tensor({2, 1, 5, 5}, [](int64_t i) {
    const int64_t b = i / 25, r = (i / 5) % 5, c = i % 5;
    return b == 0 ? c < 3 : (r > 0 && c <= r);
  });
  ir::Graph g = fuse_and_compare(torch_sdpa_model(true), in, 1);
  const ir::Node* fa = find_op(g, "FusedAttention");
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->name, "sdpa");
  EXPECT_EQ(fa->attr_int("nan_to_zero", 0), 1);
  EXPECT_EQ(fa->attr_int("causal", 1), 0);
  EXPECT_NEAR(fa->attr_float("scale", 0), 1.0 / std::sqrt(8.0), 1e-6);
  ASSERT_EQ(fa->inputs.size(), 4u);
  EXPECT_EQ(fa->inputs[1], "k");     // the Reshape/Transpose/Reshape K^T is gone
  EXPECT_EQ(fa->inputs[3], "mask");  // the bool itself, not the additive Where
  EXPECT_EQ(count_op(g, "Where"), 0);
  EXPECT_EQ(count_op(g, "Reshape"), 0);
  // The guard's zeros really came from fully masked rows: batch 1, query 0 is all zeros.
  auto out = run_cpu(g, in);
  const Tensor& y = out.at("attn");
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t e = 0; e < 8; ++e) EXPECT_EQ(y.data<float>()[((1 * 2 + h) * 5 + 0) * 8 + e], 0.f);
}

TEST(FuseAttention, TorchSdpaWithoutMaskAtOtherLengths) {
  for (int64_t s : {1, 3, 7}) {
    SCOPED_TRACE("seq " + std::to_string(s));
    fuse_and_compare(torch_sdpa_model(false), qkv(1, 2, s, 8, 10 + s), 1);
  }
}

// The textbook form: softmax(Q K^T / sqrt(d)) V with K^T by Transpose perm [0,1,3,2], no mask.
TEST(FuseAttention, DivBySqrtDAndTransposePerm) {
  ModelBuilder b(17);
  b.input("q", DType::kF32, {"2", "3", "7", "4"})
      .input("k", DType::kF32, {"2", "3", "9", "4"})
      .input("v", DType::kF32, {"2", "3", "9", "5"})
      .initializer("sqrt_d", f32_tensor({1}, {2.f}))
      .node("Transpose", {"k"}, {"kt"})
      .attr("perm", std::vector<int64_t>{0, 1, 3, 2})
      .node("MatMul", {"q", "kt"}, {"s"})
      .node("Div", {"s", "sqrt_d"}, {"sd"})
      .node("Softmax", {"sd"}, {"p"})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  std::map<std::string, Tensor> in = {{"q", testing::random_f32({2, 3, 7, 4}, 3)},
                                      {"k", testing::random_f32({2, 3, 9, 4}, 4)},
                                      {"v", testing::random_f32({2, 3, 9, 5}, 5)}};
  ir::Graph g = fuse_and_compare(b, in, 1);
  const ir::Node* fa = find_op(g, "FusedAttention");
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->inputs[1], "k");
  EXPECT_EQ(count_op(g, "Transpose"), 0);
  EXPECT_FLOAT_EQ(fa->attr_float("scale", 0), 0.5f);
  EXPECT_EQ(fa->attr_int("nan_to_zero", 1), 0);
}

// Mul on the scores and Where(mask, scores, -inf) masking; K^T from a [B, S, H, D] tensor by perm [0,2,3,1]
// (a new Transpose [0,2,1,3] makes K).
TEST(FuseAttention, MulOnScoresWhereMaskAndComposedTranspose) {
  ModelBuilder b(17);
  b.input("q", DType::kF32, {"2", "2", "6", "4"})
      .input("kbshd", DType::kF32, {"2", "6", "2", "4"})
      .input("v", DType::kF32, {"2", "2", "6", "4"})
      .input("mask", DType::kBool, {"6", "6"})
      .initializer("c", f32_tensor({}, {0.3f}))
      .initializer("ninf", f32_tensor({}, {-kInf}))
      .node("Transpose", {"kbshd"}, {"kt"})
      .attr("perm", std::vector<int64_t>{0, 2, 3, 1})
      .node("MatMul", {"q", "kt"}, {"s"})
      .node("Mul", {"c", "s"}, {"sc"})
      .node("Where", {"mask", "sc", "ninf"}, {"sm"})
      .node("Softmax", {"sm"}, {"p"})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  std::map<std::string, Tensor> in = {
      {"q", testing::random_f32({2, 2, 6, 4}, 6)},
      {"kbshd", testing::random_f32({2, 6, 2, 4}, 7)},
      {"v", testing::random_f32({2, 2, 6, 4}, 8)},
      {"mask", bool_tensor({6, 6}, [](int64_t i) { return (i * 7) % 5 != 0; })}};
  ir::Graph g = fuse_and_compare(b, in, 1);
  const ir::Node* t = find_op(g, "Transpose");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->attr_ints("perm"), (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_FLOAT_EQ(find_op(g, "FusedAttention")->attr_float("scale", 0), 0.3f);
}

// Where(mask, -inf, scores): the mask says what to drop, so the fused node gets Not(mask).
TEST(FuseAttention, WhereDropMaskBecomesNot) {
  ModelBuilder b(17);
  b.input("q", DType::kF32, {"1", "2", "5", "4"})
      .input("k", DType::kF32, {"1", "2", "5", "4"})
      .input("v", DType::kF32, {"1", "2", "5", "4"})
      .input("drop", DType::kBool, {"1", "1", "1", "5"})
      .initializer("ninf", f32_tensor({}, {-kInf}))
      .node("Transpose", {"k"}, {"kt"})
      .attr("perm", std::vector<int64_t>{0, 1, 3, 2})
      .node("MatMul", {"q", "kt"}, {"s"})
      .node("Where", {"drop", "ninf", "s"}, {"sm"})
      .node("Softmax", {"sm"}, {"p"})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  auto in = qkv(1, 2, 5, 4, 20);
  in["drop"] = bool_tensor({1, 1, 1, 5}, [](int64_t i) { return i == 1 || i == 4; });
  ir::Graph g = fuse_and_compare(b, in, 1);
  EXPECT_EQ(count_op(g, "Not"), 1);
}

// GPT-2's shape: qkv from one projection split in three, a constant causal mask (bool, and additive 0/-inf),
// which becomes causal=1 with no mask input.
ModelBuilder gpt2_like(bool additive_mask) {
  const int64_t s = 6;
  ModelBuilder b(18);
  b.input("x", DType::kF32, {"batch", std::to_string(s), "24"});
  shape_constants(b);
  b.initializer("split_shape", i64_tensor({4}, {0, 0, 2, 4}))
      .initializer("sqrt_scale", f32_tensor({}, {std::sqrt(0.5f)}))
      .initializer("zero", f32_tensor({}, {0.f}))
      .initializer("ninf", f32_tensor({}, {-kInf}));
  Tensor tri(additive_mask ? DType::kF32 : DType::kBool, {1, 1, s, s});
  for (int64_t i = 0; i < s; ++i)
    for (int64_t j = 0; j < s; ++j) {
      if (additive_mask)
        tri.data<float>()[i * s + j] = j <= i ? 0.f : -kInf;
      else
        tri.data<uint8_t>()[i * s + j] = j <= i;
    }
  b.initializer("tri", tri);
  b.node("Split", {"x"}, {"xq", "xk", "xv"}).attr("axis", int64_t{2}).attr("num_outputs", int64_t{3});
  for (const char* n : {"q", "k", "v"}) {
    const std::string s_ = n;
    b.node("Reshape", {"x" + s_, "split_shape"}, {s_ + "_4d"})
        .node("Transpose", {s_ + "_4d"}, {s_})
        .attr("perm", std::vector<int64_t>{0, 2, 1, 3});
  }
  torch_kt(b, "k", "kt");
  b.node("Mul", {"q", "sqrt_scale"}, {"qs"}).node("Mul", {"kt", "sqrt_scale"}, {"kts"});
  b.node("MatMul", {"qs", "kts"}, {"scores"});
  if (additive_mask) {
    b.node("Add", {"scores", "tri"}, {"masked"});
  } else {
    b.node("Where", {"tri", "zero", "ninf"}, {"add_mask"}).node("Add", {"add_mask", "scores"}, {"masked"});
  }
  b.node("Softmax", {"masked"}, {"p"})
      .attr("axis", int64_t{-1})
      .node("IsNaN", {"p"}, {"p_nan"})
      .node("Where", {"p_nan", "zero", "p"}, {"p0"})
      .node("MatMul", {"p0", "v"}, {"attn"})
      .node("Transpose", {"attn"}, {"y"})
      .attr("perm", std::vector<int64_t>{0, 2, 1, 3})
      .output("y");
  return b;
}

TEST(FuseAttention, Gpt2LikeConstantCausalMaskBecomesCausal) {
  for (bool additive : {false, true}) {
    SCOPED_TRACE(additive ? "additive mask" : "bool mask");
    ir::Graph g = fuse_and_compare(gpt2_like(additive), {{"x", testing::random_f32({2, 6, 24}, 30)}}, 1);
    const ir::Node* fa = find_op(g, "FusedAttention");
    ASSERT_NE(fa, nullptr);
    EXPECT_EQ(fa->attr_int("causal", 0), 1);
    EXPECT_EQ(fa->inputs.size(), 3u);
    EXPECT_NEAR(fa->attr_float("scale", 0), 0.5, 1e-6);
  }
}

// ViT's nn.MultiheadAttention: static shapes, 1-element scale constants on Q and K^T, K^T by the Reshape
// chain with constant shape operands.
TEST(FuseAttention, VitLikeStaticReshapeChain) {
  ModelBuilder b(18);
  b.input("q", DType::kF32, {"2", "3", "5", "4"})
      .input("k", DType::kF32, {"2", "3", "5", "4"})
      .input("v", DType::kF32, {"2", "3", "5", "4"})
      .initializer("t1", i64_tensor({3}, {6, 5, 4}))
      .initializer("t2", i64_tensor({4}, {2, 3, 4, 5}))
      .initializer("c", f32_tensor({1}, {0.7f}))
      .node("Reshape", {"k", "t1"}, {"r1"})
      .node("Transpose", {"r1"}, {"tr"})
      .attr("perm", std::vector<int64_t>{0, 2, 1})
      .node("Reshape", {"tr", "t2"}, {"kt"})
      .node("Mul", {"q", "c"}, {"qs"})
      .node("Mul", {"kt", "c"}, {"kts"})
      .node("MatMul", {"qs", "kts"}, {"s"})
      .node("Softmax", {"s"}, {"p"})
      .attr("axis", int64_t{-1})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, qkv(2, 3, 5, 4, 40), 1);
  EXPECT_NEAR(find_op(g, "FusedAttention")->attr_float("scale", 0), 0.49, 1e-6);
  EXPECT_EQ(count_op(g, "Reshape"), 0);
}

// A reshape chain that is not K^T (the middle shape is [.., D, S] read the wrong way round) stays a K^T
// value: the fused node transposes it instead, and results still match.
TEST(FuseAttention, ReshapeChainThatIsNotKtIsTransposedAsAWhole) {
  ModelBuilder b(18);
  b.input("q", DType::kF32, {"1", "2", "4", "4"})
      .input("k", DType::kF32, {"1", "2", "4", "4"})
      .input("v", DType::kF32, {"1", "2", "4", "4"})
      .initializer("t1", i64_tensor({3}, {2, 4, 4}))
      .initializer("t2", i64_tensor({4}, {1, 2, 4, 4}))
      .node("Reshape", {"k", "t1"}, {"r1"})
      .node("Transpose", {"r1"}, {"tr"})
      .attr("perm", std::vector<int64_t>{2, 1, 0})  // not [0, 2, 1]
      .node("Reshape", {"tr", "t2"}, {"kt"})
      .node("MatMul", {"q", "kt"}, {"s"})
      .node("Softmax", {"s"}, {"p"})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, qkv(1, 2, 4, 4, 50), 1);
  EXPECT_EQ(count_op(g, "Reshape"), 2);
}

// Multi-query form: K and V with one head broadcast over Q's heads by MatMul.
TEST(FuseAttention, SingleKvHeadBroadcasts) {
  ModelBuilder b(17);
  b.input("q", DType::kF32, {"2", "4", "3", "8"})
      .input("k", DType::kF32, {"2", "1", "3", "8"})
      .input("v", DType::kF32, {"2", "1", "3", "8"})
      .node("Transpose", {"k"}, {"kt"})
      .attr("perm", std::vector<int64_t>{0, 1, 3, 2})
      .node("MatMul", {"q", "kt"}, {"s"})
      .node("Softmax", {"s"}, {"p"})
      .node("MatMul", {"p", "v"}, {"y"})
      .output("y");
  fuse_and_compare(b, qkv(2, 4, 3, 8, 60, 1), 1);
}

// Negative cases: the graph must stay exactly as it was.
ModelBuilder simple_model(const std::function<void(ModelBuilder&)>& body) {
  ModelBuilder b(17);
  b.input("q", DType::kF32, {"1", "2", "5", "4"})
      .input("k", DType::kF32, {"1", "2", "5", "4"})
      .input("v", DType::kF32, {"1", "2", "5", "4"})
      .initializer("c", f32_tensor({}, {0.5f}))
      .node("Transpose", {"k"}, {"kt"})
      .attr("perm", std::vector<int64_t>{0, 1, 3, 2});
  body(b);
  return b;
}

TEST(FuseAttention, ScoresWithAnotherReaderStayUnfused) {
  auto b = simple_model([](ModelBuilder& m) {
    m.node("MatMul", {"q", "kt"}, {"s"})
        .node("Mul", {"s", "c"}, {"sc"})
        .node("Softmax", {"sc"}, {"p"})
        .node("MatMul", {"p", "v"}, {"y"})
        .output("y")
        .output("s");  // the raw scores are also a graph output
  });
  fuse_and_compare(b, qkv(1, 2, 5, 4, 70), 0);
  auto b2 = simple_model([](ModelBuilder& m) {
    m.node("MatMul", {"q", "kt"}, {"s"})
        .node("Softmax", {"s"}, {"p"})
        .node("MatMul", {"p", "v"}, {"y"})
        .node("ReduceMax", {"p"}, {"pmax"})  // the probabilities have a second reader
        .output("y")
        .output("pmax");
  });
  fuse_and_compare(b2, qkv(1, 2, 5, 4, 71), 0);
}

TEST(FuseAttention, SoftmaxOnAnotherAxisStaysUnfused) {
  auto b = simple_model([](ModelBuilder& m) {
    m.node("MatMul", {"q", "kt"}, {"s"})
        .node("Softmax", {"s"}, {"p"})
        .attr("axis", int64_t{2})
        .node("MatMul", {"p", "v"}, {"y"})
        .output("y");
  });
  fuse_and_compare(b, qkv(1, 2, 5, 4, 80), 0);
}

TEST(FuseAttention, NonConstantScaleStaysUnfused) {
  ModelBuilder b = simple_model([](ModelBuilder& m) {
    m.input("scale", DType::kF32, {})
        .node("MatMul", {"q", "kt"}, {"s"})
        .node("Mul", {"s", "scale"}, {"sc"})
        .node("Softmax", {"sc"}, {"p"})
        .node("MatMul", {"p", "v"}, {"y"})
        .output("y");
  });
  auto in = qkv(1, 2, 5, 4, 90);
  in["scale"] = f32_tensor({}, {0.25f});
  fuse_and_compare(b, in, 0);
}

TEST(FuseAttention, GuardThatIsNotZeroStaysUnfused) {
  auto b = simple_model([](ModelBuilder& m) {
    m.initializer("one", f32_tensor({}, {1.f}))
        .node("MatMul", {"q", "kt"}, {"s"})
        .node("Softmax", {"s"}, {"p"})
        .node("IsNaN", {"p"}, {"pn"})
        .node("Where", {"pn", "one", "p"}, {"p1"})
        .node("MatMul", {"p1", "v"}, {"y"})
        .output("y");
  });
  fuse_and_compare(b, qkv(1, 2, 5, 4, 100), 0);
}

// The real models: every layer fuses, and the fused CPU engine matches the unfused one on a short input.
struct SkeletonCase {
  const char* name;
  int layers;
  std::map<std::string, Tensor> inputs;
};

TEST(FuseAttention, RealSkeletonsFuseEveryLayer) {
  std::vector<SkeletonCase> cases = {
      {"bert_base", 12, testing::token_inputs(true)},
      {"gpt2", 12, testing::token_inputs(false)},
      {"vit_b_16", 12, {{"image", testing::random_f32({1, 3, 224, 224}, 5)}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string bytes = testing::load_skeleton(c.name);
    ir::Graph fused = import(bytes), plain = import(bytes);
    ASSERT_TRUE(passes::run_pipeline(fused, passes::default_pipeline()).ok());
    ASSERT_TRUE(passes::run_pipeline(plain, testing::pipeline_without({"fuse_attention"})).ok());
    EXPECT_EQ(count_op(fused, "FusedAttention"), c.layers);
    EXPECT_EQ(count_op(fused, "Softmax"), 0);
    EXPECT_EQ(count_op(plain, "Softmax"), c.layers);
    for (const auto& n : fused.nodes)
      if (n.op_type == "FusedAttention") {
        EXPECT_EQ(n.attr_int("nan_to_zero", 0), std::string(c.name) == "vit_b_16" ? 0 : 1) << n.name;
        EXPECT_NEAR(n.attr_float("scale", 0), 0.125, 1e-6) << n.name;  // 1/sqrt(64)
      }
    // Node count drops by the chains and their K^T shape plumbing.
    EXPECT_LT(fused.nodes.size(), plain.nodes.size());
    expect_close(run_cpu(plain, c.inputs), run_cpu(fused, c.inputs), 1e-3, 1e-4);
  }
}

// The shipped tiny_attention model (K^T by Transpose [0,2,3,1], Div by sqrt(d)) builds with one
// FusedAttention, and the engine file carries the kiln-domain node: a saved and reloaded engine still runs it
// and agrees.
TEST(FuseAttention, EngineFileRoundTripKeepsTheFusedNode) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_file(std::string(KILN_SOURCE_DIR) + "/models/tiny_attention.onnx", cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->op_histogram()["FusedAttention"], 1);
  EXPECT_EQ(e->op_histogram().count("Softmax"), 0u);
  auto bytes = e->serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto loaded = Engine::deserialize(*bytes);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->op_histogram()["FusedAttention"], 1);
  const Tensor x = testing::random_f32({2, 5, 32}, 9);
  auto c1 = e->create_context();
  auto c2 = loaded->create_context();
  ASSERT_TRUE(c1.ok() && c2.ok());
  auto y1 = c1->infer({{"tokens", x}});
  auto y2 = c2->infer({{"tokens", x}});
  ASSERT_TRUE(y1.ok()) << y1.status().to_string();
  ASSERT_TRUE(y2.ok()) << y2.status().to_string();
  expect_close(*y1, *y2, 0, 0);
}

}  // namespace
}  // namespace kiln
