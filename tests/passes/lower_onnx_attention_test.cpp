// lower_onnx_attention alone and in the default pipeline: opset-23 Attention nodes without a cache, softcap
// or extra outputs become FusedAttention (3-D inputs through Reshapes and the [B, S, H, X] layout attributes,
// no Transposes) and compute what the Attention node did on the CPU at odd sizes; the forms FusedAttention
// cannot express stay Attention; a model with an opset-23 Attention builds and runs end to end (also through
// an engine file), and the CUDA placement rule runs the lowered node on the GPU and the rest on the CPU
// fallback.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "backends/cpu/dispatch.h"
#include "kiln/kiln.h"
#include "passes/pass.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"

#ifdef KILN_WITH_CUDA
#include "backends/cuda/placement.h"
#endif

namespace kiln {
namespace {

using namespace testing;  // graph_test_util.h, model_builder.h

struct Case {
  int64_t b = 2, hq = 2, hkv = 2, sq = 3, skv = 7, past = 0, d = 4, dv = 4;
  bool three_d = false, causal = false;
  std::optional<float> scale;
  float softcap = 0;
  std::vector<int64_t> mask;  // dims; empty: none
  DType mask_dt = DType::kBool, vdt = DType::kF32;
  std::vector<std::string> extra_outputs;  // of "present_key", "present_value", "qk": graph outputs
  std::vector<std::string> batch_seq;      // dim names for B and S of 3-D inputs (symbolic); empty: static
};

std::string s(int64_t v) {
  return std::to_string(v);
}

std::vector<std::string> dims3(const Case& c, int64_t seq, int64_t hidden) {
  if (!c.batch_seq.empty()) return {c.batch_seq[0], c.batch_seq[1], s(hidden)};
  return {s(c.b), s(seq), s(hidden)};
}

ModelBuilder model(const Case& c) {
  ModelBuilder m(23);
  if (c.three_d) {
    m.input("q", DType::kF32, dims3(c, c.sq, c.hq * c.d))
        .input("k", DType::kF32, dims3(c, c.skv, c.hkv * c.d));
    m.input("v", c.vdt, dims3(c, c.skv, c.hkv * c.dv));
  } else {
    m.input("q", DType::kF32, {s(c.b), s(c.hq), s(c.sq), s(c.d)})
        .input("k", DType::kF32, {s(c.b), s(c.hkv), s(c.skv), s(c.d)})
        .input("v", c.vdt, {s(c.b), s(c.hkv), s(c.skv), s(c.dv)});
  }
  std::vector<std::string> ins = {"q", "k", "v", c.mask.empty() ? "" : "mask"};
  if (!c.mask.empty()) {
    std::vector<std::string> md;
    for (int64_t x : c.mask) md.push_back(s(x));
    m.input("mask", c.mask_dt, md);
  }
  if (c.past > 0) {
    m.input("pk", DType::kF32, {s(c.b), s(c.hkv), s(c.past), s(c.d)});
    m.input("pv", c.vdt, {s(c.b), s(c.hkv), s(c.past), s(c.dv)});
    ins.push_back("pk");
    ins.push_back("pv");
  }
  while (ins.back().empty()) ins.pop_back();
  auto wants = [&](const char* o) {
    return std::find(c.extra_outputs.begin(), c.extra_outputs.end(), o) != c.extra_outputs.end();
  };
  std::vector<std::string> outs = {"y", wants("present_key") ? "present_key" : "",
                                   wants("present_value") ? "present_value" : "", wants("qk") ? "qk" : ""};
  while (outs.back().empty()) outs.pop_back();
  m.node("Attention", ins, outs, "att");
  if (c.three_d) m.attr("q_num_heads", c.hq).attr("kv_num_heads", c.hkv);
  if (c.causal) m.attr("is_causal", int64_t{1});
  if (c.scale) m.attr("scale", *c.scale);
  if (c.softcap != 0) m.attr("softcap", c.softcap);
  if (wants("qk")) m.attr("qk_matmul_output_mode", int64_t{3});  // probabilities: no -inf to compare
  for (const auto& o : outs)
    if (!o.empty()) m.output(o);
  return m;
}

std::map<std::string, Tensor> inputs(const Case& c, uint64_t seed, int64_t b = -1, int64_t sq = -1,
                                     int64_t skv = -1) {
  b = b < 0 ? c.b : b, sq = sq < 0 ? c.sq : sq, skv = skv < 0 ? c.skv : skv;
  auto x = [&](int64_t seq, int64_t heads, int64_t hd) {
    return c.three_d ? std::vector<int64_t>{b, seq, heads * hd} : std::vector<int64_t>{b, heads, seq, hd};
  };
  std::map<std::string, Tensor> in = {{"q", testing::random_f32(x(sq, c.hq, c.d), seed)},
                                      {"k", testing::random_f32(x(skv, c.hkv, c.d), seed + 1)},
                                      {"v", testing::random_f32(x(skv, c.hkv, c.dv), seed + 2)}};
  if (c.vdt != DType::kF32) in["v"] = cpu::convert_tensor(in["v"], c.vdt);
  if (c.past > 0) {
    in["pk"] = testing::random_f32({b, c.hkv, c.past, c.d}, seed + 3);
    in["pv"] = cpu::convert_tensor(testing::random_f32({b, c.hkv, c.past, c.dv}, seed + 4), c.vdt);
  }
  if (!c.mask.empty()) {
    Tensor r = testing::random_f32(c.mask, seed + 5);
    Tensor m(c.mask_dt, c.mask);
    const int64_t t = c.mask.back();
    for (int64_t i = 0; i < m.numel(); ++i) {
      const float v = r.data<float>()[i];
      const bool keep = i % t == 0 || v > -0.5f;  // key 0 always kept: no NaN rows to compare
      if (c.mask_dt == DType::kBool)
        m.data<uint8_t>()[i] = keep;
      else if (c.mask_dt == DType::kF32)
        m.data<float>()[i] = keep ? 2 * v : -std::numeric_limits<float>::infinity();
      else
        m.data<int64_t>()[i] = keep ? static_cast<int64_t>(3 * v) : -1000;
    }
    in["mask"] = m;
  }
  return in;
}

ir::Graph lowered(const Case& c, uint64_t seed) {
  return testing::pass_keeps_outputs(model(c).bytes(), passes::lower_onnx_attention, inputs(c, seed), 1e-5);
}

void expect_lowered(const ir::Graph& g, const Case& c) {
  EXPECT_EQ(count_op(g, "Attention"), 0);
  ASSERT_EQ(count_op(g, "FusedAttention"), 1);
  EXPECT_EQ(count_op(g, "Transpose"), 0);
  EXPECT_EQ(count_op(g, "Reshape"), c.three_d ? 4 : 0);
  const ir::Node* fa = find_op(g, "FusedAttention");
  EXPECT_EQ(fa->name, "att");
  EXPECT_EQ(fa->domain, "kiln");
  EXPECT_EQ(fa->attr_int("causal", 0), c.causal ? 1 : 0);
  EXPECT_EQ(fa->has_attr("scale"), c.scale.has_value());
  for (const char* a : {"q_bshd", "k_bshd", "v_bshd", "y_bshd"})
    EXPECT_EQ(fa->attr_int(a, 0), c.three_d ? 1 : 0) << a;
  EXPECT_EQ(fa->inputs.size(), c.mask.empty() ? 3u : 4u);
}

TEST(LowerOnnxAttention, FourDForms) {
  uint64_t seed = 1;
  std::vector<Case> cases(7);
  cases[1].causal = true;                                     // Sq 3 < Sk 7: top-left like torch
  cases[2].sq = 7, cases[2].skv = 3, cases[2].causal = true;  // Sq > Sk
  cases[3].mask = {2, 1, 3, 7};                               // bool, broadcast over heads
  cases[4].mask = {3, 7}, cases[4].mask_dt = DType::kF32;     // additive, rank 2
  cases[5].hq = 4, cases[5].hkv = 2, cases[5].scale = 0.3f;   // GQA + explicit scale
  cases[6].hq = cases[6].hkv = 1, cases[6].sq = cases[6].skv = 1, cases[6].d = 3, cases[6].dv = 5;
  for (const Case& c : cases) {
    SCOPED_TRACE("case " + std::to_string(seed));
    expect_lowered(lowered(c, seed++), c);
  }
}

TEST(LowerOnnxAttention, ThreeDFormsBecomeReshapesAndLayoutAttributes) {
  uint64_t seed = 100;
  for (int64_t heads : {1, 3})
    for (int64_t seq : {1, 3, 7}) {
      Case c;
      c.three_d = true, c.hq = c.hkv = heads, c.sq = seq, c.skv = seq, c.d = 5, c.dv = 3, c.causal = seq > 1;
      SCOPED_TRACE(std::to_string(heads) + " heads, seq " + std::to_string(seq));
      ir::Graph g = lowered(c, seed++);
      expect_lowered(g, c);
      const ir::Node* fa = find_op(g, "FusedAttention");
      const ir::ValueInfo* q4 = g.value(fa->inputs[0]);
      ASSERT_NE(q4, nullptr);
      EXPECT_EQ(q4->shape.to_string(), fmt::format("[2,{},{},5]", seq, heads));
    }
  Case gqa;  // grouped heads and a mask
  gqa.three_d = true, gqa.hq = 4, gqa.hkv = 2, gqa.sq = 3, gqa.skv = 7, gqa.d = 8, gqa.dv = 6;
  gqa.mask = {2, 4, 3, 7}, gqa.mask_dt = DType::kF32;
  expect_lowered(lowered(gqa, seed++), gqa);
}

TEST(LowerOnnxAttention, DynamicBatchAndSequence3D) {
  Case c;
  c.three_d = true, c.hq = 4, c.hkv = 2, c.sq = c.skv = 5, c.causal = true, c.batch_seq = {"batch", "seq"};
  ir::Graph plain = testing::import_inferred(model(c).bytes());
  ir::Graph g = plain;
  ASSERT_TRUE(passes::lower_onnx_attention(g).ok());
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  expect_lowered(g, c);
  EXPECT_EQ(g.value("y")->shape.to_string(), "[batch,seq,16]");
  for (auto [b, seq] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {2, 4}}) {
    SCOPED_TRACE(std::to_string(b) + "x" + std::to_string(seq));
    const auto in = inputs(c, 200 + seq, b, seq, seq);
    testing::expect_same_outputs(testing::run_cpu(plain, in), testing::run_cpu(g, in), 1e-5);
  }
}

TEST(LowerOnnxAttention, UnreadPresentOutputsDoNotBlockLowering) {
  // present_key / present_value named but read by nobody (not graph outputs): lowered, and their values
  // dropped.
  ModelBuilder m(23);
  m.input("q", DType::kF32, {"1", "2", "3", "4"}).input("k", DType::kF32, {"1", "2", "3", "4"});
  m.input("v", DType::kF32, {"1", "2", "3", "4"});
  m.node("Attention", {"q", "k", "v"}, {"y", "pk_out", "pv_out"}, "att").output("y");
  Case c;
  c.sq = c.skv = 3;
  ir::Graph g = testing::pass_keeps_outputs(m.bytes(), passes::lower_onnx_attention, inputs(c, 300), 1e-5);
  EXPECT_EQ(count_op(g, "FusedAttention"), 1);
  EXPECT_EQ(g.value("pk_out"), nullptr);
}

TEST(LowerOnnxAttention, FormsFusedAttentionCannotExpressStayAttention) {
  std::vector<std::pair<std::string, Case>> cases;
  Case past;
  past.past = 4, past.sq = past.skv = 3, past.causal = true,
  past.extra_outputs = {"present_key", "present_value"};
  cases.push_back({"past KV", past});
  Case softcap;
  softcap.softcap = 1.5f, softcap.mask = {3, 7};
  cases.push_back({"softcap", softcap});
  Case qk;
  qk.extra_outputs = {"qk"}, qk.mask = {3, 7}, qk.mask_dt = DType::kF32;
  cases.push_back({"qk_matmul_output read", qk});
  Case present;
  present.three_d = true, present.extra_outputs = {"present_value"};
  cases.push_back({"present_value read", present});
  Case int_mask;
  int_mask.mask = {1, 1, 3, 7}, int_mask.mask_dt = DType::kI64;
  cases.push_back({"integer additive mask", int_mask});
  Case v64;
  v64.vdt = DType::kF64;
  cases.push_back({"V in another dtype", v64});
  Case wide;
  wide.sq = wide.skv = 1, wide.d = 520, wide.dv = 8;
  cases.push_back({"head size above the CUDA kernel's 512", wide});
  uint64_t seed = 400;
  for (const auto& [what, c] : cases) {
    SCOPED_TRACE(what);
    ir::Graph g = lowered(c, seed++);
    EXPECT_EQ(count_op(g, "Attention"), 1);
    EXPECT_EQ(count_op(g, "FusedAttention"), 0);
    EXPECT_EQ(count_op(g, "Reshape"), 0);
  }
}

// torch's 4-D form: heads split by Reshape + Transpose(0,2,1,3) before Attention and merged after it. The
// default pipeline lowers the node and fold_attention_layout then absorbs the head Transposes.
TEST(LowerOnnxAttention, PipelineFoldsHeadTransposesAroundTheLoweredNode) {
  ModelBuilder m(23);
  m.input("x", DType::kF32, {"2", "7", "12"}).input("mask", DType::kBool, {"2", "1", "1", "7"});
  m.initializer("split", testing::i64_tensor({4}, {2, 7, 3, 4}))
      .initializer("merge", testing::i64_tensor({3}, {2, 7, 12}));
  for (const char* t : {"q", "k", "v"}) {
    m.initializer(std::string("w") + t, testing::random_f32({12, 12}, t[0]));
    m.node("MatMul", {"x", std::string("w") + t}, {std::string(t) + "_p"});
    m.node("Reshape", {std::string(t) + "_p", "split"}, {std::string(t) + "_s"});
    m.node("Transpose", {std::string(t) + "_s"}, {std::string(t) + "_h"})
        .attr("perm", std::vector<int64_t>{0, 2, 1, 3});
  }
  m.node("Attention", {"q_h", "k_h", "v_h", "mask"}, {"a"}, "att").attr("is_causal", int64_t{1});
  m.node("Transpose", {"a"}, {"a_t"}).attr("perm", std::vector<int64_t>{0, 2, 1, 3});
  m.node("Reshape", {"a_t", "merge"}, {"y"}).output("y");
  ir::Graph plain = testing::import_inferred(m.bytes());
  ir::Graph g = plain;
  ASSERT_TRUE(passes::run_pipeline(g, passes::default_pipeline()).ok());
  EXPECT_EQ(count_op(g, "Attention"), 0);
  ASSERT_EQ(count_op(g, "FusedAttention"), 1);
  EXPECT_EQ(count_op(g, "Transpose"), 0);
  const ir::Node* fa = find_op(g, "FusedAttention");
  for (const char* a : {"q_bshd", "k_bshd", "v_bshd", "y_bshd"}) EXPECT_EQ(fa->attr_int(a, 0), 1) << a;
  Tensor mask(DType::kBool, {2, 1, 1, 7});
  for (int64_t i = 0; i < 14; ++i) mask.data<uint8_t>()[i] = i % 7 != 3;
  const std::map<std::string, Tensor> in = {{"x", testing::random_f32({2, 7, 12}, 9)}, {"mask", mask}};
  testing::expect_same_outputs(testing::run_cpu(plain, in), testing::run_cpu(g, in), 1e-5);
}

// A model with an opset-23 Attention builds and runs through the public API: lowered (3-D, causal, bool mask)
// and not (softcap with a KV cache, its present outputs also engine outputs), the latter also through an
// engine file.
TEST(LowerOnnxAttention, ModelsBuildEndToEnd) {
  Case lowerable;
  lowerable.three_d = true, lowerable.hq = 4, lowerable.hkv = 2, lowerable.sq = lowerable.skv = 7;
  lowerable.causal = true, lowerable.mask = {2, 1, 7, 7};
  Case kept;
  kept.past = 3, kept.sq = kept.skv = 1, kept.causal = true, kept.softcap = 2.f;
  kept.extra_outputs = {"present_key", "present_value"};
  for (const Case* c : {&lowerable, &kept}) {
    const bool lowers = c == &lowerable;
    SCOPED_TRACE(lowers ? "lowered" : "kept");
    const ModelBuilder m = model(*c);
    const auto in = inputs(*c, 500);
    const auto want = testing::run_cpu(testing::import_inferred(m.bytes()), in);
    BuildConfig cfg;
    cfg.backend = BackendKind::kCpu;
    auto engine = Builder::build_from_bytes(m.bytes(), cfg);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    auto hist = engine->op_histogram();
    EXPECT_EQ(hist["FusedAttention"], lowers ? 1 : 0);
    EXPECT_EQ(hist["Attention"], lowers ? 0 : 1);
    auto ctx = engine->create_context();
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    auto got = ctx->infer(in);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    testing::expect_same_outputs(want, *got, 1e-5);
    if (lowers) continue;
    auto bytes = engine->serialize();
    ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
    auto loaded = Engine::deserialize(*bytes);
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    auto ctx2 = loaded->create_context();
    ASSERT_TRUE(ctx2.ok()) << ctx2.status().to_string();
    auto again = ctx2->infer(in);
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    testing::expect_same_outputs(want, *again, 0);
  }
}

#ifdef KILN_WITH_CUDA
// What a CUDA engine does with each form (predicted with the executor's own rule, no GPU needed): the lowered
// node runs on the GPU; an Attention that stays (softcap) falls back to the CPU reference inside the engine.
TEST(LowerOnnxAttention, CudaPlacementLoweredOnGpuKeptOnCpuFallback) {
  Case lowerable;
  lowerable.three_d = true, lowerable.causal = true;
  Case kept = lowerable;
  kept.softcap = 3.f;
  for (const Case* c : {&lowerable, &kept}) {
    const bool lowers = c == &lowerable;
    SCOPED_TRACE(lowers ? "lowered" : "kept");
    ir::Graph g = testing::import_inferred(model(*c).bytes());
    ASSERT_TRUE(passes::run_pipeline(g, passes::default_pipeline()).ok());
    auto placed = cuda::predict_placement(g, {{"q", {2, 3, 8}}, {"k", {2, 7, 8}}, {"v", {2, 7, 8}}});
    ASSERT_TRUE(placed.ok()) << placed.status().to_string();
    int attention = 0;
    for (const auto& p : *placed) {
      if (p.op == "FusedAttention" || p.op == "Attention") {
        ++attention;
        EXPECT_EQ(p.op, lowers ? "FusedAttention" : "Attention");
        EXPECT_EQ(p.where, lowers ? cuda::Placement::kGpu : cuda::Placement::kCpuFallback);
      }
    }
    EXPECT_EQ(attention, 1);
  }
}
#endif

}  // namespace
}  // namespace kiln
