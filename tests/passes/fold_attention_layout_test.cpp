// fold_attention_layout alone and after fuse_attention: head Transposes (perm [0,2,1,3]) around
// FusedAttention become its *_bshd attributes, the graph gives the same CPU results at odd sizes (S = 1, 3,
// 7, 127; 1 or 3 heads; masks; grouped K/V), Transposes with other readers or other perms stay, and the real
// BERT/GPT-2 skeletons lose their attention Transposes and still match the unfused graph.
#include <gtest/gtest.h>

#include <cmath>
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

std::vector<passes::Pass> pipeline_without(std::initializer_list<std::string_view> names) {
  std::vector<passes::Pass> out;
  for (const auto& p : passes::default_pipeline())
    if (std::find(names.begin(), names.end(), p.name) == names.end()) out.push_back(p);
  return out;
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
  Tensor ids(DType::kI64, {2, 7}), mask(DType::kI64, {2, 7});
  for (int64_t i = 0; i < 14; ++i) {
    ids.data<int64_t>()[i] = (i * 131) % 30000;
    mask.data<int64_t>()[i] = i < 7 || i % 7 < 4 ? 1 : 0;  // the second row padded after 4 tokens
  }
  struct SkeletonCase {
    const char* name;
    int folded_per_layer;  // Transposes this pass removes from each of the 12 layers
    std::map<std::string, Tensor> inputs;
  };
  // BERT and GPT-2: Q, K, V and Y. ViT (nn.MultiheadAttention) splits heads with 3-D [1,0,2] Transposes
  // between Reshapes and merges them with perm [2,0,1,3]: nothing of that is a [B,S,H,D] head swap.
  const std::vector<SkeletonCase> cases = {
      {"bert_base", 4, {{"input_ids", ids}, {"attention_mask", mask}}},
      {"gpt2", 4, {{"input_ids", ids}}},
      {"vit_b_16", 0, {{"image", testing::random_f32({1, 3, 224, 224}, 5)}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string bytes = testing::load_skeleton(c.name);
    auto import = [&] {
      auto g = onnx::import_model_bytes(bytes, ".", c.name);
      EXPECT_TRUE(g.ok()) << g.status().to_string();
      return g.ok() ? std::move(*g) : ir::Graph();
    };
    ir::Graph folded = import(), unfolded = import(), plain = import();
    Status st = passes::run_pipeline(folded, passes::default_pipeline());
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_TRUE(passes::run_pipeline(unfolded, pipeline_without({"fold_attention_layout"})).ok());
    ASSERT_TRUE(
        passes::run_pipeline(plain, pipeline_without({"fuse_attention", "fold_attention_layout"})).ok());
    EXPECT_EQ(count_op(folded, "FusedAttention"), 12);
    EXPECT_EQ(count_op(unfolded, "Transpose") - count_op(folded, "Transpose"), 12 * c.folded_per_layer);
    if (c.folded_per_layer == 4) EXPECT_EQ(attention_transposes(folded), 0);
    int with_layout = 0;
    for (const auto& n : folded.nodes)
      if (n.op_type == "FusedAttention")
        with_layout += n.attr_int("q_bshd", 0) + n.attr_int("k_bshd", 0) + n.attr_int("v_bshd", 0) +
                       n.attr_int("y_bshd", 0);
    EXPECT_EQ(with_layout, 12 * c.folded_per_layer);
    expect_close(run_cpu(plain, c.inputs), run_cpu(folded, c.inputs), 1e-3, 1e-4);
  }
}

}  // namespace
}  // namespace kiln
