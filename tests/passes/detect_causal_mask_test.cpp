// detect_causal_mask: attention masks computed from Shape(input) (torch's causal mask) are evaluated over the
// profiles' shapes and become FusedAttention causal=1 when they are exactly top-left causal; masks that are
// off somewhere in the range, read input values, broadcast a row, or are not bounded by a profile are kept.
// The GPT-2 skeleton's 12 attentions all become causal and the engine still computes what the unfused model
// does.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.h"
#include "ops/op.h"
#include "passes/detect_causal_mask.h"
#include "passes/pass.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

using testing::count_op;
using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;

enum class Mask {
  kCausalBool,      // Where(j <= i, 0, -inf): fuse_attention hands FusedAttention the bool
  kCausalFinfoMin,  // Where(j <= i, 0, finfo(f32).min): stays an additive f32 mask, as GPT-2's does
  kOffByOne,        // j < i
  kExtraColumn,     // j <= i, or j == 100 (only differs from causal once seq > 100)
  kFirstColumnRow,  // [1, S]: keep j == 0 only (causal for one query row, broadcast to every row)
  kPadding,         // j <= i and attention_mask[b, j] != 0: reads an input's values
};

// Attention over q, k, v [batch, 2, seq, 8] (or static dims) with a mask the graph builds from Shape(q) as
// torch does: Range(0, seq) unsqueezed into a row and a column, compared, then made additive by Where.
ModelBuilder mask_model(Mask form, const std::vector<std::string>& dims = {"batch", "2", "seq", "8"}) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  ModelBuilder b(18);
  b.input("q", DType::kF32, dims).input("k", DType::kF32, dims).input("v", DType::kF32, dims);
  if (form == Mask::kPadding) b.input("attention_mask", DType::kI64, {dims[0], dims[2]});
  b.initializer("c0", i64_tensor({}, {0}))
      .initializer("c1", i64_tensor({}, {1}))
      .initializer("c100", i64_tensor({}, {100}))
      .initializer("ax0", i64_tensor({1}, {0}))
      .initializer("ax1", i64_tensor({1}, {1}))
      .initializer("ax12", i64_tensor({2}, {1, 2}))
      .initializer("zero", f32_tensor({}, {0.f}))
      .initializer("neg",
                   f32_tensor({}, {form == Mask::kCausalBool ? -kInf : std::numeric_limits<float>::lowest()}))
      .initializer("scale", f32_tensor({}, {0.35f}));
  b.node("Shape", {"q"}, {"seq_1d"})
      .attr("start", int64_t{2})
      .attr("end", int64_t{3})
      .node("Squeeze", {"seq_1d", "ax0"}, {"seq"})
      .node("Range", {"c0", "seq", "c1"}, {"ar"})
      .node("Unsqueeze", {"ar", "ax0"}, {"cols"})   // [1, S]: key index j
      .node("Unsqueeze", {"ar", "ax1"}, {"rows"});  // [S, 1]: query index i
  std::string keep = "keep";
  switch (form) {
    case Mask::kOffByOne:
      b.node("Less", {"cols", "rows"}, {keep});
      break;
    case Mask::kFirstColumnRow:
      b.node("Equal", {"cols", "c0"}, {keep});
      break;
    default:
      b.node("LessOrEqual", {"cols", "rows"}, {keep});
  }
  if (form == Mask::kExtraColumn) {
    b.node("Equal", {"cols", "c100"}, {"col100"}).node("Or", {keep, "col100"}, {"keep2"});
    keep = "keep2";
  }
  if (form == Mask::kPadding) {
    b.node("Cast", {"attention_mask"}, {"pad_bool"})
        .attr("to", int64_t{9})
        .node("Unsqueeze", {"pad_bool", "ax12"}, {"pad4"})  // [B, 1, 1, S]
        .node("And", {keep, "pad4"}, {"keep_pad"});
    keep = "keep_pad";
  }
  b.node("Where", {keep, "zero", "neg"}, {"add_mask"})
      .node("Transpose", {"k"}, {"kt"})
      .attr("perm", std::vector<int64_t>{0, 1, 3, 2})
      .node("MatMul", {"q", "kt"}, {"s0"})
      .node("Mul", {"s0", "scale"}, {"s1"})
      .node("Add", {"s1", "add_mask"}, {"s2"})
      .node("Softmax", {"s2"}, {"p"})
      .attr("axis", int64_t{-1})
      .node("MatMul", {"p", "v"}, {"y"}, "attn")
      .output("y");
  return b;
}

OptimizationProfile qkv_profile(int64_t max_seq, bool name_q = true) {
  OptimizationProfile p;
  for (const char* x : {"q", "k", "v"})
    if (name_q || std::string(x) != "q") p.inputs[x] = {{1, 2, 1, 8}, {2, 2, 16, 8}, {2, 2, max_seq, 8}};
  return p;
}

std::map<std::string, Tensor> qkv(int64_t batch, int64_t seq, uint64_t seed) {
  std::map<std::string, Tensor> in;
  for (const char* x : {"q", "k", "v"}) in[x] = testing::random_f32({batch, 2, seq, 8}, seed++);
  // Scores large enough that a mask leaking a key would show.
  for (int64_t i = 0; i < in["q"].numel(); ++i) in["q"].data<float>()[i] *= 4;
  return in;
}

// The model after the default pipeline: one FusedAttention, still reading the mask.
ir::Graph pipelined(const ModelBuilder& b) {
  ir::Graph g = testing::import_inferred(b.bytes());
  Status s = passes::run_pipeline(g, passes::default_pipeline());
  EXPECT_TRUE(s.ok()) << s.to_string();
  return g;
}

const ir::Node* attention(const ir::Graph& g) {
  return testing::find_op(g, "FusedAttention");
}

passes::CausalMaskReport detect(ir::Graph& g, const std::vector<OptimizationProfile>& profiles) {
  passes::CausalMaskReport r;
  Status s = passes::detect_causal_mask(g, profiles, &r);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return r;
}

std::string kept_reasons(const passes::CausalMaskReport& r) {
  std::string s;
  for (const auto& k : r.kept) s += k + "\n";
  return s;
}

void expect_detected(Mask form, DType mask_dtype) {
  const ModelBuilder b = mask_model(form);
  ir::Graph g = pipelined(b);
  const ir::Node* fa = attention(g);
  ASSERT_NE(fa, nullptr);
  ASSERT_EQ(fa->inputs.size(), 4u);
  EXPECT_EQ(g.value(fa->inputs[3])->dtype, mask_dtype);  // the form this test means to cover
  EXPECT_EQ(fa->attr_int("causal", -1), 0);
  auto r = detect(g, {qkv_profile(128)});
  EXPECT_EQ(r.masked, 1);
  EXPECT_EQ(r.causal, 1) << kept_reasons(r);
  fa = attention(g);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attr_int("causal", 0), 1);
  EXPECT_EQ(fa->inputs.size(), 3u);
  // The mask's subgraph is gone: FusedAttention is all that is left.
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_TRUE(passes::infer_shapes(g).ok());
  const ir::Graph original = testing::import_inferred(b.bytes());
  for (int64_t seq : {1, 3, 7, 64, 127}) {
    SCOPED_TRACE("seq " + std::to_string(seq));
    const auto in = qkv(2, seq, 10 + seq);
    testing::expect_same_outputs(testing::run_cpu(original, in), testing::run_cpu(g, in), 1e-5);
  }
}

TEST(DetectCausalMask, BoolMaskFromShapeBecomesCausal) {
  expect_detected(Mask::kCausalBool, DType::kBool);
}

TEST(DetectCausalMask, AdditiveFinfoMinMaskBecomesCausal) {
  expect_detected(Mask::kCausalFinfoMin, DType::kF32);
}

// Masks that must stay: the rewrite would change results (or cannot be shown not to).
void expect_kept(Mask form, const std::vector<OptimizationProfile>& profiles, const std::string& reason) {
  ir::Graph g = pipelined(mask_model(form));
  const size_t nodes = g.nodes.size();
  auto r = detect(g, profiles);
  EXPECT_EQ(r.masked, 1);
  EXPECT_EQ(r.causal, 0);
  ASSERT_EQ(r.kept.size(), 1u);
  EXPECT_NE(r.kept[0].find(reason), std::string::npos) << r.kept[0];
  const ir::Node* fa = attention(g);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attr_int("causal", -1), 0);
  EXPECT_EQ(fa->inputs.size(), 4u);
  EXPECT_EQ(g.nodes.size(), nodes);
}

TEST(DetectCausalMask, OffByOneMaskIsKept) {
  // j < i masks the diagonal: seq 1's single element is already wrong.
  expect_kept(Mask::kOffByOne, {qkv_profile(128)}, "row 0 column 0");
}

TEST(DetectCausalMask, MaskThatDiffersOnlyAtLongSequencesIsKept) {
  // Causal up to seq 100; at 101 key 100 is visible from every row. Found because every length in the
  // profile's range is evaluated (the grid is small), not only a few.
  expect_kept(Mask::kExtraColumn, {qkv_profile(128)}, "column 100");
  // A second profile that reaches that length is checked too.
  expect_kept(Mask::kExtraColumn, {qkv_profile(64), qkv_profile(101)}, "column 100");
}

TEST(DetectCausalMask, MaskCausalOverTheWholeProfileIsDetected) {
  // The same mask is causal at every length the engine accepts with max 100 (it refuses 101 and more).
  ir::Graph g = pipelined(mask_model(Mask::kExtraColumn));
  auto r = detect(g, {qkv_profile(100)});
  EXPECT_EQ(r.causal, 1) << kept_reasons(r);
}

TEST(DetectCausalMask, RowMaskThatBroadcastsIsKept) {
  // [1, S] keeping key 0 is causal for a single query row but broadcasts to every row of the scores.
  expect_kept(Mask::kFirstColumnRow, {qkv_profile(128)}, "not the attention's");
}

TEST(DetectCausalMask, PaddingMaskReadingInputValuesIsKept) {
  OptimizationProfile p = qkv_profile(128);
  p.inputs["attention_mask"] = {{1, 1}, {2, 16}, {2, 128}};
  expect_kept(Mask::kPadding, {p}, "reads the values of input 'attention_mask'");
}

TEST(DetectCausalMask, UnboundedDynamicDimsAreKept) {
  // Without profiles the engine takes any seq; with a profile that does not name q, any seq of q.
  expect_kept(Mask::kCausalFinfoMin, {}, "no optimization profile");
  expect_kept(Mask::kCausalFinfoMin, {qkv_profile(128, /*name_q=*/false)}, "does not bound it");
}

TEST(DetectCausalMask, StaticShapesNeedNoProfile) {
  // Static dims fold the finfo.min mask into a constant (fuse_attention only takes -inf constants as causal);
  // it is evaluated once, at the static shape.
  const ModelBuilder b = mask_model(Mask::kCausalFinfoMin, {"2", "2", "7", "8"});
  ir::Graph g = pipelined(b);
  const ir::Node* fa = attention(g);
  ASSERT_NE(fa, nullptr);
  ASSERT_EQ(fa->inputs.size(), 4u);
  EXPECT_TRUE(g.is_constant(fa->inputs[3]));
  auto r = detect(g, {});
  EXPECT_EQ(r.causal, 1) << kept_reasons(r);
  fa = attention(g);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->attr_int("causal", 0), 1);
  EXPECT_EQ(fa->inputs.size(), 3u);
  EXPECT_TRUE(g.initializers.empty());
  const auto in = qkv(2, 7, 3);
  testing::expect_same_outputs(testing::run_cpu(testing::import_inferred(b.bytes()), in),
                               testing::run_cpu(g, in), 1e-5);
}

OptimizationProfile gpt2_profile(int64_t max_batch, int64_t max_seq) {
  OptimizationProfile p;
  p.inputs["input_ids"] = {{1, 1}, {max_batch, 16}, {max_batch, max_seq}};
  return p;
}

Tensor token_ids(int64_t batch, int64_t seq) {
  Tensor ids(DType::kI64, {batch, seq});
  for (int64_t i = 0; i < ids.numel(); ++i) ids.data<int64_t>()[i] = (i * 131 + 7) % 50257;
  return ids;
}

// torch 2.11's GPT-2: the causal mask (with transformers' packed-sequence check: CumSum, GatherND…) is built
// from Shape(input_ids) once and read by all 12 attentions as finfo.min additive f32.
TEST(DetectCausalMask, Gpt2SkeletonAttentionsAllBecomeCausal) {
  const std::string bytes = testing::load_skeleton("gpt2");
  ir::Graph plain = testing::import_inferred(bytes);
  ASSERT_TRUE(passes::run_pipeline(plain, passes::default_pipeline()).ok());
  ir::Graph g = plain;
  auto r = detect(g, {gpt2_profile(2, 64)});
  EXPECT_EQ(r.masked, 12);
  EXPECT_EQ(r.causal, 12) << kept_reasons(r);
  int causal = 0;
  for (const auto& n : g.nodes)
    if (n.op_type == "FusedAttention") {
      causal += n.attr_int("causal", 0) == 1;
      EXPECT_EQ(n.inputs.size(), 3u) << n.name;
    }
  EXPECT_EQ(causal, 12);
  // The mask's own nodes are gone (arange stays: the position embedding reads it too).
  EXPECT_EQ(count_op(g, "CumSum"), 0);
  EXPECT_EQ(count_op(g, "GatherND"), 0);
  EXPECT_GT(count_op(plain, "GatherND"), 0);
  EXPECT_TRUE(passes::infer_shapes(g).ok());
  for (auto [batch, seq] : {std::pair<int64_t, int64_t>{2, 1}, {2, 5}, {1, 64}}) {
    SCOPED_TRACE("input_ids [" + std::to_string(batch) + "," + std::to_string(seq) + "]");
    const std::map<std::string, Tensor> in = {{"input_ids", token_ids(batch, seq)}};
    testing::expect_same_outputs(testing::run_cpu(plain, in), testing::run_cpu(g, in), 1e-4);
  }
}

// A profile too wide for every shape (batch 1..32, seq 1..512): evaluated at min/opt/max, sampled values of
// each dim (1, 2, 7, 63..65, 127, 128 and spread ones) with the others at min and at max, and the diagonal.
TEST(DetectCausalMask, Gpt2SkeletonWideProfileIsSampled) {
  ir::Graph g = testing::import_inferred(testing::load_skeleton("gpt2"));
  ASSERT_TRUE(passes::run_pipeline(g, passes::default_pipeline()).ok());
  auto r = detect(g, {gpt2_profile(32, 512)});
  EXPECT_EQ(r.causal, 12) << kept_reasons(r);
}

TEST(DetectCausalMask, SampledShapesStillFindALateDifference) {
  // seq 1..1024, batch 1..8: too many shapes for the whole grid; the sampled lengths above 100 show key 100.
  OptimizationProfile p;
  for (const char* x : {"q", "k", "v"}) p.inputs[x] = {{1, 2, 1, 8}, {4, 2, 16, 8}, {8, 2, 1024, 8}};
  expect_kept(Mask::kExtraColumn, {p}, "column 100");
}

TEST(DetectCausalMask, Gpt2SkeletonWithoutProfileKeepsItsMask) {
  ir::Graph g = testing::import_inferred(testing::load_skeleton("gpt2"));
  ASSERT_TRUE(passes::run_pipeline(g, passes::default_pipeline()).ok());
  auto r = detect(g, {});
  EXPECT_EQ(r.masked, 12);
  EXPECT_EQ(r.causal, 0);
  ASSERT_EQ(r.kept.size(), 1u);  // one mask, shared by the 12 layers
  EXPECT_NE(r.kept[0].find("no optimization profile"), std::string::npos) << r.kept[0];
}

// Through the builder: the progress line, the engine's results, and the profile bound that makes the check
// sufficient (a longer sequence is refused, not run with a mask that was never evaluated there).
TEST(DetectCausalMask, Gpt2EngineBuiltWithProfile) {
  const std::string bytes = testing::load_skeleton("gpt2");
  std::vector<std::string> lines;
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.profiles = {gpt2_profile(2, 32)};
  cfg.progress = [&](std::string_view s) { lines.emplace_back(s); };
  auto e = Builder::build_from_bytes(bytes, cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  bool reported = false;
  for (const auto& l : lines) reported |= l == "pass detect_causal_mask: 12 attention masks are causal";
  EXPECT_TRUE(reported);
  EXPECT_EQ(e->op_histogram().count("CumSum"), 0u);
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  ir::Graph plain = testing::import_inferred(bytes);
  const std::map<std::string, Tensor> in = {{"input_ids", token_ids(2, 9)}};
  auto out = ctx->infer(in);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  testing::expect_same_outputs(testing::run_cpu(plain, in), *out, 1e-4);
  auto outside = ctx->infer({{"input_ids", token_ids(1, 33)}});
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().code(), StatusCode::kOutOfRange) << outside.status().to_string();
}

}  // namespace

}  // namespace kiln
