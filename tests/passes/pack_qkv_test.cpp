// pack_qkv: FusedAttention reading head splits of three same-input projections (one QKV GEMM after the pass)
// or of a last-axis Split (gone after the pass) takes the packed rows (packed=1); the CPU results match the
// unpacked graph at odd sizes (B 1/3, S 1/3/7), with grouped K/V, missing biases, trans_b weights, masks and
// any split order; projections or parts with other readers stay; bad packed attributes are errors naming the
// node; the real BERT/ViT/GPT-2 skeletons pack all 12 layers and still match.
#include <gtest/gtest.h>

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
using testing::sdims;

struct Case {
  int64_t b = 3, s = 7, e = 20, h = 4, hk = 2, d = 6;
  bool trans_b = false;
  bool k_bias = true;  // K's projection has a bias (Q's and V's always do)
  bool mask = false;
  bool y_bshd = true;
};

std::string str(int64_t v) {
  return std::to_string(v);
}

// Reshape "<t>_flat" [B, S, H*D] -> "<t>" [B, S, H, D] for t in q, k, v, then FusedAttention (q/k/v_bshd = 1)
// of them (and "mask") into "y".
void head_splits_and_attention(ModelBuilder& b, const Case& c) {
  for (const char* t : {"q", "k", "v"}) {
    const std::string s = t;
    b.initializer(s + "_shape", testing::i64_tensor({4}, {0, 0, s == "q" ? c.h : c.hk, c.d}));
    b.node("Reshape", {s + "_flat", s + "_shape"}, {s});
  }
  std::vector<std::string> ins = {"q", "k", "v"};
  if (c.mask) ins.push_back("mask");
  b.node("FusedAttention", ins, {"y"}, "attn")
      .domain("kiln")
      .attr("q_bshd", int64_t{1})
      .attr("k_bshd", int64_t{1})
      .attr("v_bshd", int64_t{1})
      .attr("y_bshd", int64_t{c.y_bshd ? 1 : 0})
      .attr("nan_to_zero", int64_t{1})
      .output("y");
}

// x [B, S, E] -> FusedMatMul per Q/K/V -> Reshape [B, S, H, D] -> FusedAttention (q/k/v_bshd = 1).
ModelBuilder projection_model(const Case& c, bool extra_reader = false) {
  ModelBuilder b(18);
  b.input("x", DType::kF32, sdims({c.b, c.s, c.e}));
  if (c.mask) b.input("mask", DType::kBool, sdims({c.b, 1, c.s, c.s}));
  const char* names[3] = {"q", "k", "v"};
  uint64_t seed = 10;
  for (int i = 0; i < 3; ++i) {
    const std::string t = names[i];
    const int64_t n = (i == 0 ? c.h : c.hk) * c.d;
    b.initializer("w_" + t, testing::random_f32(c.trans_b ? std::vector<int64_t>{n, c.e} : std::vector<int64_t>{c.e, n}, seed++));
    std::vector<std::string> ins = {"x", "w_" + t};
    if (i != 1 || c.k_bias) {
      b.initializer("b_" + t, testing::random_f32({n}, seed++));
      ins.push_back("b_" + t);
    }
    b.node("FusedMatMul", ins, {t + "_flat"}).domain("kiln").attr("trans_b", int64_t{c.trans_b ? 1 : 0});
  }
  head_splits_and_attention(b, c);
  if (extra_reader) b.output("k_flat");
  return b;
}

std::map<std::string, Tensor> inputs_for(const Case& c, int64_t width, uint64_t seed) {
  std::map<std::string, Tensor> in = {{"x", testing::random_f32({c.b, c.s, width}, seed)}};
  if (c.mask) {
    Tensor m(DType::kBool, {c.b, 1, c.s, c.s});
    const Tensor r = testing::random_f32(m.dims(), seed + 1);
    for (int64_t i = 0; i < m.numel(); ++i) m.data<uint8_t>()[i] = r.data<float>()[i] > -0.5f;
    in["mask"] = m;
  }
  return in;
}

// Runs pack_qkv (then dead code and shapes) and compares with the graph before it on the CPU reference.
ir::Graph pack_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  ir::Graph before = testing::import_inferred(b.bytes());
  ir::Graph after = before;
  Status st = passes::pack_qkv(after);
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(passes::eliminate_dead_code(after).ok());
  st = passes::infer_shapes(after);
  EXPECT_TRUE(st.ok()) << st.to_string();
  testing::expect_same_outputs(run_cpu(before, inputs), run_cpu(after, inputs), 1e-5);
  return after;
}

const ir::Node* packed_attention(const ir::Graph& g) {
  const ir::Node* n = find_op(g, "FusedAttention");
  return n && n->attr_int("packed", 0) == 1 ? n : nullptr;
}

TEST(PackQkv, ProjectionsBecomeOneGemmAtOddSizes) {
  std::vector<Case> cases;
  for (int64_t b : {1, 3})
    for (int64_t s : {1, 3, 7}) {
      Case c;
      c.b = b;
      c.s = s;
      c.trans_b = s == 3;
      c.k_bias = s != 7;
      c.mask = b == 3;
      c.y_bshd = s != 1;
      c.hk = b == 1 ? 4 : 2;  // grouped K/V at batch 3
      cases.push_back(c);
    }
  uint64_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("b={} s={} hk={} trans_b={} k_bias={} mask={}", c.b, c.s, c.hk, c.trans_b, c.k_bias,
                             c.mask));
    ir::Graph g = pack_and_compare(projection_model(c), inputs_for(c, c.e, seed++));
    EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
    EXPECT_EQ(count_op(g, "Reshape"), 0);
    const ir::Node* att = packed_attention(g);
    ASSERT_NE(att, nullptr);
    EXPECT_EQ(att->attr_ints("qkv_offsets"), (std::vector<int64_t>{0, c.h * c.d, (c.h + c.hk) * c.d}));
    EXPECT_EQ(att->attr_int("q_num_heads", 0), c.h);
    EXPECT_EQ(att->attr_int("kv_num_heads", 0), c.hk);
    EXPECT_EQ(att->attr_int("head_size", 0), c.d);
    const ir::Node* mm = find_op(g, "FusedMatMul");
    ASSERT_NE(mm, nullptr);
    const Tensor& w = g.initializers.at(mm->inputs[1]);
    const int64_t n = (c.h + 2 * c.hk) * c.d;
    EXPECT_EQ(w.dims(), c.trans_b ? (std::vector<int64_t>{n, c.e}) : (std::vector<int64_t>{c.e, n}));
  }
}

// x [B, S, W] -> Split(axis -1) -> Reshape per part -> FusedAttention reading the parts in another order.
TEST(PackQkv, SplitPartsInAnyOrderGoAway) {
  for (int order = 0; order < 2; ++order) {
    Case c;
    c.b = order == 0 ? 1 : 3;
    c.s = order == 0 ? 3 : 7;
    c.mask = order == 1;
    const int64_t q = c.h * c.d, kv = c.hk * c.d;
    // Parts in the Split: order 0 is Q, K, V; order 1 is V, Q, K.
    const std::vector<int64_t> sizes = order == 0 ? std::vector<int64_t>{q, kv, kv} : std::vector<int64_t>{kv, q, kv};
    const std::vector<std::string> roles = order == 0 ? std::vector<std::string>{"q", "k", "v"}
                                                       : std::vector<std::string>{"v", "q", "k"};
    ModelBuilder b(18);
    b.input("x", DType::kF32, sdims({c.b, c.s, q + 2 * kv}));
    if (c.mask) b.input("mask", DType::kBool, sdims({c.b, 1, c.s, c.s}));
    b.initializer("sizes", testing::i64_tensor({3}, sizes));
    b.node("Split", {"x", "sizes"}, {roles[0] + "_flat", roles[1] + "_flat", roles[2] + "_flat"}).attr("axis", int64_t{-1});
    head_splits_and_attention(b, c);
    SCOPED_TRACE(order);
    ir::Graph g = pack_and_compare(b, inputs_for(c, q + 2 * kv, 200 + order));
    EXPECT_EQ(count_op(g, "Split"), 0);
    EXPECT_EQ(count_op(g, "Reshape"), 0);
    const ir::Node* att = packed_attention(g);
    ASSERT_NE(att, nullptr);
    EXPECT_EQ(att->inputs[0], "x");
    EXPECT_EQ(att->attr_ints("qkv_offsets"),
              order == 0 ? (std::vector<int64_t>{0, q, q + kv}) : (std::vector<int64_t>{kv, kv + q, 0}));
  }
}

TEST(PackQkv, OtherReadersResidualsAndActivationsStay) {
  Case c;
  // K's projection output is also a graph output.
  {
    ir::Graph g = pack_and_compare(projection_model(c, true), inputs_for(c, c.e, 300));
    EXPECT_EQ(packed_attention(g), nullptr);
    EXPECT_EQ(count_op(g, "FusedMatMul"), 3);
  }
  // A projection with an activation, or with a residual, is not a plain projection.
  for (int variant = 0; variant < 2; ++variant) {
    ModelBuilder b = projection_model(c);
    ir::Graph g = testing::import_inferred(b.bytes());
    for (auto& n : g.nodes)
      if (n.op_type == "FusedMatMul" && n.outputs[0] == "v_flat") {
        if (variant == 0) {
          n.attrs["activation"] = ir::Attribute::of_string("relu");
        } else {
          n.inputs.resize(4);
          n.inputs[3] = "v_flat_residual";
          g.inputs.push_back("v_flat_residual");
          g.values["v_flat_residual"] = *g.value("v_flat");
        }
      }
    ASSERT_TRUE(passes::pack_qkv(g).ok());
    EXPECT_EQ(packed_attention(g), nullptr) << variant;
    EXPECT_EQ(count_op(g, "FusedMatMul"), 3) << variant;
  }
}

TEST(PackQkv, BadPackedAttributesAreErrorsNamingTheNode) {
  struct Bad {
    std::vector<int64_t> offsets;
    int64_t heads, kv_heads;
    const char* expect;
  };
  const std::vector<Bad> bads = {{{0, 24, 48}, 4, 2, "need"},        // V ends at 60 > 48
                                 {{0, 24}, 4, 2, "qkv_offsets"},     // two offsets
                                 {{0, 24, 36}, 4, 3, "kv dividing"}, // 3 does not divide 4
                                 {{0, -1, 36}, 4, 2, ">= 0"}};
  for (const Bad& bad : bads) {
    ModelBuilder b(18);
    b.input("x", DType::kF32, {"2", "5", "48"});
    b.node("FusedAttention", {"x", "", ""}, {"y"}, "packed_attn")
        .domain("kiln")
        .attr("packed", int64_t{1})
        .attr("q_num_heads", bad.heads)
        .attr("kv_num_heads", bad.kv_heads)
        .attr("head_size", int64_t{6})
        .attr("qkv_offsets", bad.offsets)
        .output("y");
    auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
    ASSERT_TRUE(g.ok());
    Status st = passes::infer_shapes(*g);
    EXPECT_FALSE(st.ok()) << bad.expect;
    EXPECT_NE(st.message().find("packed_attn"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(bad.expect), std::string::npos) << st.message();
  }
  // Without packed=1, K and V are required.
  ModelBuilder b(18);
  b.input("q", DType::kF32, {"1", "2", "3", "4"});
  b.node("FusedAttention", {"q"}, {"y"}, "unpacked_attn").domain("kiln").output("y");
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
  ASSERT_TRUE(g.ok());
  Status st = passes::infer_shapes(*g);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("K is missing"), std::string::npos) << st.message();
}

TEST(PackQkv, RealSkeletonsPackEveryLayer) {
  struct SkeletonCase {
    const char* name;
    int gemms_saved, splits_saved;  // per layer
    std::map<std::string, Tensor> inputs;
  };
  const std::vector<SkeletonCase> cases = {
      {"bert_base", 2, 0, testing::token_inputs(true)},
      {"gpt2", 0, 1, testing::token_inputs(false)},
      {"vit_b_16", 2, 0, {{"image", testing::random_f32({2, 3, 224, 224}, 5)}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string bytes = testing::load_skeleton(c.name);
    ir::Graph packed = testing::import_plain(bytes, c.name), unpacked = testing::import_plain(bytes, c.name);
    Status st = passes::run_pipeline(packed, passes::default_pipeline());
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_TRUE(passes::run_pipeline(unpacked, testing::pipeline_without({"pack_qkv"})).ok());
    int n_packed = 0;
    for (const auto& n : packed.nodes) n_packed += n.op_type == "FusedAttention" && n.attr_int("packed", 0) == 1;
    EXPECT_EQ(n_packed, 12);
    EXPECT_EQ(count_op(unpacked, "FusedMatMul") - count_op(packed, "FusedMatMul"), 12 * c.gemms_saved);
    EXPECT_EQ(count_op(unpacked, "Split") - count_op(packed, "Split"), 12 * c.splits_saved);
    testing::expect_same_outputs(run_cpu(unpacked, c.inputs), run_cpu(packed, c.inputs), 1e-4);
  }
}

}  // namespace
}  // namespace kiln
