// fold_attention_layout alone and after fuse_attention: head Transposes (perm [0,2,1,3]) around
// FusedAttention become its *_bshd attributes, the graph gives the same CPU results at odd sizes (S = 1, 3,
// 7, 127; 1 or 3 heads; masks; grouped K/V), Transposes with other readers or other perms stay; ViT's
// nn.MultiheadAttention chains (seq-first Transposes, packed in_proj, 5-D head split) fold whole at odd sizes
// and any Q/K/V order, and stay when a perm, a Reshape target or a reader differs; the real BERT/GPT-2/ViT
// skeletons lose their attention Transposes (ViT at batch 2, so (s, b) vs (b, s) row order shows) and still
// match the unfused graph.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

#include "ops/op.h"
#include "passes/pass.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

using testing::count_op;
using testing::find_op;
using testing::ModelBuilder;
using testing::run_cpu;

const std::vector<int64_t> kHeadPerm = {0, 2, 1, 3};

void expect_close(const std::map<std::string, Tensor>& want, const std::map<std::string, Tensor>& got,
                  double rtol = 1e-5, double atol = 1e-6) {
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    const Tensor& o = got.at(name);
    ASSERT_EQ(o.dims(), w.dims()) << name;
    int64_t bad = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      const double a = o.get_as_double(i), e = w.get_as_double(i);
      if (a == e || (std::isnan(a) && std::isnan(e))) continue;
      if (!(std::fabs(a - e) <= atol + rtol * std::fabs(e)) && bad++ < 5)
        ADD_FAILURE() << name << "[" << i << "]: folded " << a << " vs original " << e;
    }
    EXPECT_EQ(bad, 0) << name;
  }
}

std::string s(int64_t v) {
  return std::to_string(v);
}

struct Case {
  int64_t b = 2, sq = 7, sk = 7, h = 3, hk = 3, d = 8, dv = 8;
  bool mask = false;        // bool mask [B, 1, Sq, Sk]
  bool transpose_y = true;  // Y goes through Transpose(perm [0,2,1,3]) to the output
};

// Q/K/V arrive as [B, S, H, D] and are made [B, H, S, D] by head Transposes, then FusedAttention.
ModelBuilder bshd_model(const Case& c) {
  ModelBuilder b(18);
  b.input("q_in", DType::kF32, {s(c.b), s(c.sq), s(c.h), s(c.d)})
      .input("k_in", DType::kF32, {s(c.b), s(c.sk), s(c.hk), s(c.d)})
      .input("v_in", DType::kF32, {s(c.b), s(c.sk), s(c.hk), s(c.dv)});
  if (c.mask) b.input("mask", DType::kBool, {s(c.b), "1", s(c.sq), s(c.sk)});
  for (const char* t : {"q", "k", "v"})
    b.node("Transpose", {std::string(t) + "_in"}, {t}).attr("perm", kHeadPerm);
  std::vector<std::string> ins = {"q", "k", "v"};
  if (c.mask) ins.push_back("mask");
  b.node("FusedAttention", ins, {"attn"}).domain("kiln").attr("nan_to_zero", int64_t{1});
  if (c.transpose_y) {
    b.node("Transpose", {"attn"}, {"y"}).attr("perm", kHeadPerm).output("y");
  } else {
    b.output("attn");
  }
  return b;
}

std::map<std::string, Tensor> bshd_inputs(const Case& c, uint64_t seed) {
  std::map<std::string, Tensor> in = {{"q_in", testing::random_f32({c.b, c.sq, c.h, c.d}, seed)},
                                      {"k_in", testing::random_f32({c.b, c.sk, c.hk, c.d}, seed + 1)},
                                      {"v_in", testing::random_f32({c.b, c.sk, c.hk, c.dv}, seed + 2)}};
  if (c.mask) {
    Tensor m(DType::kBool, {c.b, 1, c.sq, c.sk});
    const Tensor r = testing::random_f32(m.dims(), seed + 3);
    // ~70% kept; query row 1 (when there is one) fully masked: NaN, zeroed by nan_to_zero.
    for (int64_t i = 0; i < m.numel(); ++i)
      m.data<uint8_t>()[i] = r.data<float>()[i] > -0.4f && (i / c.sk) % c.sq != 1;
    in["mask"] = m;
  }
  return in;
}

// Runs the pass on the imported model and checks it against the original on the CPU reference.
ir::Graph fold_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  ir::Graph before = testing::import_inferred(b.bytes());
  ir::Graph after = before;
  Status st = passes::fold_attention_layout(after);
  EXPECT_TRUE(st.ok()) << st.to_string();
  st = passes::infer_shapes(after);
  EXPECT_TRUE(st.ok()) << st.to_string();
  expect_close(run_cpu(before, inputs), run_cpu(after, inputs));
  return after;
}

TEST(FoldAttentionLayout, AllFourTransposesFoldAtOddSizes) {
  for (int64_t sq : {1, 3, 7, 127})
    for (int64_t h : {1, 3})
      for (bool mask : {false, true}) {
        SCOPED_TRACE("S=" + s(sq) + " H=" + s(h) + (mask ? " mask" : ""));
        Case c;
        c.sq = c.sk = sq;
        c.h = c.hk = h;
        c.mask = mask;
        ir::Graph g = fold_and_compare(bshd_model(c), bshd_inputs(c, 10 + sq + h));
        EXPECT_EQ(count_op(g, "Transpose"), 0);
        const ir::Node* fa = find_op(g, "FusedAttention");
        ASSERT_NE(fa, nullptr);
        for (const char* a : {"q_bshd", "k_bshd", "v_bshd", "y_bshd"}) EXPECT_EQ(fa->attr_int(a, 0), 1) << a;
        EXPECT_EQ(fa->inputs[0], "q_in");
        EXPECT_EQ(fa->outputs[0], "y");
      }
}

TEST(FoldAttentionLayout, GroupedKvOtherLengthsAndHeadDims) {
  Case c;
  c.b = 1;
  c.sq = 5;
  c.sk = 9;
  c.h = 6;
  c.hk = 2;
  c.d = 4;
  c.dv = 3;
  c.mask = true;
  ir::Graph g = fold_and_compare(bshd_model(c), bshd_inputs(c, 40));
  EXPECT_EQ(count_op(g, "Transpose"), 0);
  // The folded node's output keeps the graph's [B, S, H, Dv].
  const ir::ValueInfo* y = g.value("y");
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->shape.static_dims(), (std::vector<int64_t>{1, 5, 6, 3}));
}

TEST(FoldAttentionLayout, OutputWithoutTransposeFoldsOnlyInputs) {
  Case c;
  c.transpose_y = false;
  ir::Graph g = fold_and_compare(bshd_model(c), bshd_inputs(c, 50));
  EXPECT_EQ(count_op(g, "Transpose"), 0);
  const ir::Node* fa = find_op(g, "FusedAttention");
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attr_int("q_bshd", 0), 1);
  EXPECT_EQ(fa->attr_int("y_bshd", 0), 0);
  EXPECT_EQ(fa->outputs[0], "attn");
}

TEST(FoldAttentionLayout, TransposesWithOtherReadersOrPermsStay) {
  ModelBuilder b(18);
  b.input("q_in", DType::kF32, {"2", "5", "3", "4"})
      .input("k_in", DType::kF32, {"2", "5", "3", "4"})
      .input("v_in", DType::kF32, {"2", "3", "4", "5"});
  b.node("Transpose", {"q_in"}, {"q"}).attr("perm", kHeadPerm);  // also a graph output: stays
  b.node("Transpose", {"k_in"}, {"k"}).attr("perm", kHeadPerm);  // also read by the Neg: stays
  b.node("Neg", {"k"}, {"k_neg"});
  b.node("Transpose", {"v_in"}, {"v"}).attr("perm", std::vector<int64_t>{0, 1, 3, 2});  // not a head swap
  b.node("FusedAttention", {"q", "k", "v"}, {"attn"}).domain("kiln");
  b.node("Transpose", {"attn"}, {"y1"}).attr("perm", kHeadPerm);  // Y has two readers: both stay
  b.node("Relu", {"attn"}, {"y2"});
  b.output("q").output("k_neg").output("y1").output("y2");
  std::map<std::string, Tensor> in = {{"q_in", testing::random_f32({2, 5, 3, 4}, 60)},
                                      {"k_in", testing::random_f32({2, 5, 3, 4}, 61)},
                                      {"v_in", testing::random_f32({2, 3, 4, 5}, 62)}};
  ir::Graph g = fold_and_compare(b, in);
  EXPECT_EQ(count_op(g, "Transpose"), 4);
  const ir::Node* fa = find_op(g, "FusedAttention");
  ASSERT_NE(fa, nullptr);
  for (const char* a : {"q_bshd", "k_bshd", "v_bshd", "y_bshd"}) EXPECT_EQ(fa->attr_int(a, 0), 0) << a;
}

// The unfused torch form (head Transposes, K^T by Transpose [0,1,3,2], scale, Softmax, P V, head Transpose
// back) through fuse_attention then this pass: one FusedAttention and no Transpose left.
TEST(FoldAttentionLayout, AfterFuseAttentionNoTransposeIsLeft) {
  for (int64_t seq : {1, 3, 7, 127}) {
    SCOPED_TRACE("S=" + s(seq));
    ModelBuilder b(18);
    b.input("q_in", DType::kF32, {"batch", "seq", "3", "8"})
        .input("k_in", DType::kF32, {"batch", "seq", "3", "8"})
        .input("v_in", DType::kF32, {"batch", "seq", "3", "8"})
        .initializer("scale", testing::f32_tensor({}, {0.3f}));
    for (const char* t : {"q", "k", "v"})
      b.node("Transpose", {std::string(t) + "_in"}, {t}).attr("perm", kHeadPerm);
    b.node("Transpose", {"k"}, {"kt"}).attr("perm", std::vector<int64_t>{0, 1, 3, 2});
    b.node("MatMul", {"q", "kt"}, {"scores"}).node("Mul", {"scores", "scale"}, {"scaled"});
    b.node("Softmax", {"scaled"}, {"p"}).attr("axis", int64_t{-1});
    b.node("MatMul", {"p", "v"}, {"attn"});
    b.node("Transpose", {"attn"}, {"y"}).attr("perm", kHeadPerm).output("y");
    const std::map<std::string, Tensor> in = {{"q_in", testing::random_f32({2, seq, 3, 8}, 70)},
                                              {"k_in", testing::random_f32({2, seq, 3, 8}, 71)},
                                              {"v_in", testing::random_f32({2, seq, 3, 8}, 72)}};
    ir::Graph before = testing::import_inferred(b.bytes());
    ir::Graph after = before;
    ASSERT_TRUE(passes::fuse_attention(after).ok());
    ASSERT_TRUE(passes::fold_attention_layout(after).ok());
    ASSERT_TRUE(passes::eliminate_dead_code(after).ok());
    Status st = passes::infer_shapes(after);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(count_op(after, "FusedAttention"), 1);
    EXPECT_EQ(count_op(after, "Transpose"), 0);
    expect_close(run_cpu(before, in), run_cpu(after, in), 1e-5, 1e-6);
  }
}

// nn.MultiheadAttention as torch exports a batch_first module (ViT): seq-first Transposes around a packed
// in-projection, the 5-D head split, Y merged with perm [2,0,1,3] before out_proj.
struct MhaCase {
  int64_t b = 2, s = 7, h = 3, d = 4, n_out = 12;  // n_out: out_proj's width
  bool symbolic_batch = true, bias = true, out_bias = true;
  std::array<int64_t, 3> parts = {0, 1, 2};  // Gather index of Q, K, V
  // Deviations the pass must not fold (each still a valid graph).
  std::vector<int64_t> split_perm = {3, 1, 2, 0, 4};
  std::vector<int64_t> head_target;  // last Reshape's target; default [-1, H, S, D]
  bool lin_is_output = false;        // the packed projection also leaves the graph
  bool full_c = false;               // out_proj's C is a full [S*B, N] matrix (static batch only)
};

ModelBuilder mha_model(const MhaCase& c) {
  const int64_t e = c.h * c.d;
  ModelBuilder b(20);
  b.input("x", DType::kF32, {c.symbolic_batch ? "batch" : s(c.b), s(c.s), s(e)});
  b.initializer("w", testing::random_f32({e, 3 * e}, 80))
      .initializer("bias", testing::random_f32({3 * e}, 81))
      .initializer("wo", testing::random_f32({c.n_out, e}, 82))
      .initializer(
          "bo", c.full_c ? testing::random_f32({c.s * c.b, c.n_out}, 83) : testing::random_f32({c.n_out}, 83))
      .initializer("c1", testing::i64_tensor({4}, {c.s, -1, 3, e}))
      .initializer("c2", testing::i64_tensor({3}, {c.s, -1, c.d}))
      .initializer("c3", c.head_target.empty() ? testing::i64_tensor({4}, {-1, c.h, c.s, c.d})
                                               : testing::i64_tensor({4}, c.head_target))
      .initializer("c4", testing::i64_tensor({2}, {-1, e}))
      .initializer("c5", testing::i64_tensor({3}, {c.s, -1, c.n_out}))
      .initializer("ax0", testing::i64_tensor({1}, {0}))
      .initializer("axm2", testing::i64_tensor({1}, {-2}));
  b.node("Transpose", {"x"}, {"t0"}).attr("perm", std::vector<int64_t>{1, 0, 2});
  b.node("MatMul", {"t0", "w"}, {c.bias ? "mm" : "lin"});
  if (c.bias) b.node("Add", {"mm", "bias"}, {"lin"});
  b.node("Reshape", {"lin", "c1"}, {"v1"}).attr("allowzero", int64_t{1});
  b.node("Unsqueeze", {"v1", "ax0"}, {"u"});
  b.node("Transpose", {"u"}, {"t1"}).attr("perm", c.split_perm);
  b.node("Squeeze", {"t1", "axm2"}, {"sq"});
  const char* names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    const std::string t = names[i];
    b.initializer("idx_" + t, Tensor::scalar_i64(c.parts[i]));
    b.node("Gather", {"sq", "idx_" + t}, {"sel_" + t}).attr("axis", int64_t{0});
    b.node("Reshape", {"sel_" + t, "c2"}, {"r2_" + t}).attr("allowzero", int64_t{1});
    b.node("Transpose", {"r2_" + t}, {"t2_" + t}).attr("perm", std::vector<int64_t>{1, 0, 2});
    b.node("Reshape", {"t2_" + t, "c3"}, {t}).attr("allowzero", int64_t{1});
  }
  b.node("FusedAttention", {"q", "k", "v"}, {"attn"}).domain("kiln");
  b.node("Transpose", {"attn"}, {"p"}).attr("perm", std::vector<int64_t>{2, 0, 1, 3});
  b.node("Reshape", {"p", "c4"}, {"rows"}).attr("allowzero", int64_t{1});
  b.node("Gemm",
         c.out_bias ? std::vector<std::string>{"rows", "wo", "bo"} : std::vector<std::string>{"rows", "wo"},
         {"proj"})
      .attr("transB", int64_t{1});
  b.node("Reshape", {"proj", "c5"}, {"r5"}).attr("allowzero", int64_t{1});
  b.node("Transpose", {"r5"}, {"y"}).attr("perm", std::vector<int64_t>{1, 0, 2});
  b.output("y");
  if (c.lin_is_output) b.output("lin");
  return b;
}

std::map<std::string, Tensor> mha_inputs(const MhaCase& c, uint64_t seed) {
  return {{"x", testing::random_f32({c.b, c.s, c.h * c.d}, seed)}};
}

void expect_layout(const ir::Graph& g, bool inputs, bool output) {
  const ir::Node* fa = find_op(g, "FusedAttention");
  ASSERT_NE(fa, nullptr);
  for (const char* a : {"q_bshd", "k_bshd", "v_bshd"}) EXPECT_EQ(fa->attr_int(a, 0), inputs ? 1 : 0) << a;
  EXPECT_EQ(fa->attr_int("y_bshd", 0), output ? 1 : 0);
}

TEST(FoldAttentionLayout, MultiheadAttentionChainFoldsAtOddSizes) {
  for (int64_t b : {1, 3})
    for (int64_t seq : {1, 3, 7, 127})
      for (int64_t h : {1, 3}) {
        MhaCase c;
        c.b = b;
        c.s = seq;
        c.h = h;
        c.n_out = 5;
        c.bias = c.out_bias = seq != 3;  // with and without the projections' biases
        SCOPED_TRACE("B=" + s(b) + " S=" + s(seq) + " H=" + s(h));
        ir::Graph g = fold_and_compare(mha_model(c), mha_inputs(c, 90 + b + seq + h));
        EXPECT_EQ(count_op(g, "Transpose"), 0);
        for (const char* op : {"Gather", "Squeeze", "Unsqueeze"}) EXPECT_EQ(count_op(g, op), 0) << op;
        EXPECT_EQ(count_op(g, "MatMul"), 3);  // the in-projection, a third of the weight each
        EXPECT_EQ(count_op(g, "Add"), c.bias ? 3 : 0);
        EXPECT_EQ(count_op(g, "Reshape"), 5);  // Q, K, V to [B,S,H,D]; out_proj's rows and [B,S,N]
        expect_layout(g, true, true);
        // The result keeps its name and shape [B, S, N'].
        const ir::ValueInfo* y = g.value("y");
        ASSERT_NE(y, nullptr);
        EXPECT_EQ(y->shape, testing::import_inferred(mha_model(c).bytes()).value("y")->shape);
        ASSERT_EQ(y->shape.rank(), 3u);
        EXPECT_EQ(y->shape[1].value(), seq);
        EXPECT_EQ(y->shape[2].value(), 5);
        EXPECT_EQ(g.initializers.count("w"), 0u);  // replaced by its thirds
      }
}

TEST(FoldAttentionLayout, MultiheadAttentionPartsInAnyOrderAndStaticBatch) {
  MhaCase c;
  c.b = 3;
  c.s = 5;
  c.h = 2;
  c.d = 8;
  c.symbolic_batch = false;
  c.parts = {2, -3, 1};  // Q from the last third, K from the first (negative index), V from the middle
  ir::Graph g = fold_and_compare(mha_model(c), mha_inputs(c, 100));
  EXPECT_EQ(count_op(g, "Transpose"), 0);
  expect_layout(g, true, true);
  // Q, K and V each read the right third: the weight's columns [2E, 3E), [0, E), [E, 2E).
  const ir::Node* fa = find_op(g, "FusedAttention");
  ASSERT_NE(fa, nullptr);
  const Tensor w = testing::random_f32({16, 48}, 80);
  const int64_t want_part[3] = {2, 0, 1};
  for (int i = 0; i < 3; ++i) {
    std::string v = fa->inputs[i];
    const ir::Node* mm = nullptr;
    for (int hops = 0; hops < 3 && !mm; ++hops)
      for (const auto& n : g.nodes)
        if (n.outputs[0] == v) {
          if (n.op_type == "MatMul") mm = &n;
          v = n.inputs[0];
          break;
        }
    ASSERT_NE(mm, nullptr) << i;
    const Tensor& part = g.initializers.at(mm->inputs[1]);
    ASSERT_EQ(part.dims(), (std::vector<int64_t>{16, 16}));
    for (int64_t r = 0; r < 16; ++r)
      for (int64_t col = 0; col < 16; ++col)
        ASSERT_EQ(part.data<float>()[r * 16 + col], w.data<float>()[r * 48 + want_part[i] * 16 + col]) << i;
  }
}

TEST(FoldAttentionLayout, MultiheadAttentionDeviationsStay) {
  {
    SCOPED_TRACE("heads and batch split the other way round");
    MhaCase c;
    c.head_target = {c.h, -1, c.s, c.d};  // [H, B, S, D] taken as [B, H, S, D]: not the head split
    ir::Graph g = fold_and_compare(mha_model(c), mha_inputs(c, 110));
    EXPECT_EQ(count_op(g, "Transpose"), 7);  // nothing folds (Y's head count is the symbolic batch)
    expect_layout(g, false, false);
  }
  {
    SCOPED_TRACE("the same target where B == H is static: the very same Reshape, so it folds");
    MhaCase c;
    c.head_target = {c.h, -1, c.s, c.d};
    c.b = c.h;
    c.symbolic_batch = false;
    ir::Graph g = fold_and_compare(mha_model(c), mha_inputs(c, 114));
    EXPECT_EQ(count_op(g, "Transpose"), 0);
    expect_layout(g, true, true);
  }
  {
    SCOPED_TRACE("another split perm");
    MhaCase c;
    c.split_perm = {3, 2, 1, 0, 4};  // [3, B, S, 1, E]: batch-major pieces, then the same Reshapes
    ir::Graph g = fold_and_compare(mha_model(c), mha_inputs(c, 111));
    EXPECT_EQ(count_op(g, "Transpose"), 5);
    expect_layout(g, false, true);
  }
  {
    SCOPED_TRACE("the packed projection has another reader");
    MhaCase c;
    c.lin_is_output = true;
    ir::Graph g = fold_and_compare(mha_model(c), mha_inputs(c, 112));
    EXPECT_EQ(count_op(g, "Transpose"), 5);
    expect_layout(g, false, true);
  }
  {
    SCOPED_TRACE("out_proj's C is per row");
    MhaCase c;
    c.symbolic_batch = false;
    c.full_c = true;
    ir::Graph g = fold_and_compare(mha_model(c), mha_inputs(c, 113));
    EXPECT_EQ(count_op(g, "Transpose"), 2);  // the input side folds, Y's side stays
    expect_layout(g, true, false);
  }
}

// Transposes whose input or output is FusedAttention's (the ones this pass may take).
int attention_transposes(const ir::Graph& g) {
  std::set<std::string> attn_io;
  for (const auto& n : g.nodes)
    if (n.op_type == "FusedAttention") {
      attn_io.insert(n.inputs.begin(), n.inputs.end());
      attn_io.insert(n.outputs.begin(), n.outputs.end());
    }
  int count = 0;
  for (const auto& n : g.nodes)
    if (n.op_type == "Transpose" && (attn_io.count(n.inputs[0]) || attn_io.count(n.outputs[0]))) ++count;
  return count;
}

TEST(FoldAttentionLayout, RealSkeletonsLoseTheirHeadTransposes) {
  struct SkeletonCase {
    const char* name;
    int folded_per_layer;  // Transposes this pass removes from each of the 12 layers
    int left;              // Transposes left in the whole model
    std::map<std::string, Tensor> inputs;
  };
  // BERT and GPT-2: the head Transposes of Q, K, V and Y. ViT (nn.MultiheadAttention, batch_first): the
  // seq-first Transposes before in_proj and after out_proj, the 5-D head split, Q/K/V's [1,0,2] and Y's
  // [2,0,1,3]; only the patch embedding's [0,2,1] is left.
  const std::vector<SkeletonCase> cases = {
      {"bert_base", 4, 0, testing::token_inputs(true)},
      {"gpt2", 4, 0, testing::token_inputs(false)},
      {"vit_b_16", 7, 1, {{"image", testing::random_f32({2, 3, 224, 224}, 5)}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string bytes = testing::load_skeleton(c.name);
    ir::Graph folded = testing::import_plain(bytes, c.name), unfolded = testing::import_plain(bytes, c.name),
              plain = testing::import_plain(bytes, c.name);
    // Without pack_qkv, which turns the Q/K/V layouts into one packed input.
    Status st = passes::run_pipeline(folded, testing::pipeline_without({"pack_qkv"}));
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_TRUE(passes::run_pipeline(unfolded, testing::pipeline_without({"fold_attention_layout"})).ok());
    ASSERT_TRUE(
        passes::run_pipeline(plain, testing::pipeline_without({"fuse_attention", "fold_attention_layout"})).ok());
    EXPECT_EQ(count_op(folded, "FusedAttention"), 12);
    EXPECT_EQ(count_op(unfolded, "Transpose") - count_op(folded, "Transpose"), 12 * c.folded_per_layer);
    EXPECT_EQ(attention_transposes(folded), 0);
    EXPECT_EQ(count_op(folded, "Transpose"), c.left);
    std::printf("%s: %d Transposes without fold_attention_layout, %d with it\n", c.name,
                count_op(unfolded, "Transpose"), count_op(folded, "Transpose"));
    int with_layout = 0;
    for (const auto& n : folded.nodes)
      if (n.op_type == "FusedAttention")
        with_layout += n.attr_int("q_bshd", 0) + n.attr_int("k_bshd", 0) + n.attr_int("v_bshd", 0) +
                       n.attr_int("y_bshd", 0);
    EXPECT_EQ(with_layout, 12 * 4);  // q/k/v/y_bshd on every layer
    expect_close(run_cpu(plain, c.inputs), run_cpu(folded, c.inputs), 1e-3, 1e-4);
  }
}

}  // namespace
}  // namespace kiln
