// The ONNX opset-23 Attention op on CUDA engines, against the CPU reference of the Attention node itself (not
// lowered): forms the lower_onnx_attention pass turns into FusedAttention run on the GPU with no CPU fallback
// (f16 mostly, 4-D and 3-D, causal, bool and additive masks, GQA, explicit scale, odd sequence lengths and
// head sizes), and a form that stays Attention (softcap with a KV cache) still builds for CUDA and runs
// through the CPU fallback inside the engine.
#include <fmt/format.h>

#include <limits>
#include <optional>

#include "gpu/norm_reduce_test_util.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

using gputest::sdims;
using testing::ModelBuilder;

struct Form {
  int64_t b = 2, hq = 3, hkv = 3, sq = 7, skv = 7, past = 0, d = 64, dv = 64;
  bool three_d = false, causal = false;
  std::optional<float> scale;
  float softcap = 0;
  std::vector<int64_t> mask;  // empty: none
  bool bool_mask = true;
};

std::string label(const Form& f, DType dt) {
  return fmt::format("{} {}-D b{} hq{} hkv{} sq{} skv{} past{} d{} dv{}{}{}", dtype_name(dt),
                     f.three_d ? 3 : 4, f.b, f.hq, f.hkv, f.sq, f.skv, f.past, f.d, f.dv,
                     f.causal ? " causal" : "",
                     f.mask.empty() ? ""
                     : f.bool_mask  ? " bool mask"
                                    : " float mask");
}

std::vector<int64_t> qkv_dims(const Form& f, int64_t seq, int64_t heads, int64_t x) {
  return f.three_d ? std::vector<int64_t>{f.b, seq, heads * x} : std::vector<int64_t>{f.b, heads, seq, x};
}

ModelBuilder model(const Form& f, DType dt) {
  ModelBuilder m(23);
  m.input("q", dt, sdims(qkv_dims(f, f.sq, f.hq, f.d)))
      .input("k", dt, sdims(qkv_dims(f, f.skv, f.hkv, f.d)))
      .input("v", dt, sdims(qkv_dims(f, f.skv, f.hkv, f.dv)));
  std::vector<std::string> ins = {"q", "k", "v", f.mask.empty() ? "" : "mask"};
  if (!f.mask.empty()) m.input("mask", f.bool_mask ? DType::kBool : dt, sdims(f.mask));
  std::vector<std::string> outs = {"y"};
  if (f.past > 0) {
    m.input("past_key", dt, sdims({f.b, f.hkv, f.past, f.d}))
        .input("past_value", dt, sdims({f.b, f.hkv, f.past, f.dv}));
    ins.push_back("past_key");
    ins.push_back("past_value");
    outs = {"y", "present_key", "present_value"};
  }
  while (ins.back().empty()) ins.pop_back();
  m.node("Attention", ins, outs, "att");
  if (f.three_d) m.attr("q_num_heads", f.hq).attr("kv_num_heads", f.hkv);
  if (f.causal) m.attr("is_causal", int64_t{1});
  if (f.scale) m.attr("scale", *f.scale);
  if (f.softcap != 0) m.attr("softcap", f.softcap);
  for (const auto& o : outs) m.output(o);
  return m;
}

std::map<std::string, Tensor> inputs(const Form& f, DType dt, uint64_t seed) {
  std::map<std::string, Tensor> in = {
      {"q", gputest::uniform_tensor(dt, qkv_dims(f, f.sq, f.hq, f.d), seed, -2, 2)},
      {"k", gputest::uniform_tensor(dt, qkv_dims(f, f.skv, f.hkv, f.d), seed + 1, -2, 2)},
      {"v", gputest::uniform_tensor(dt, qkv_dims(f, f.skv, f.hkv, f.dv), seed + 2, -1, 1)}};
  if (f.past > 0) {
    in["past_key"] = gputest::uniform_tensor(dt, {f.b, f.hkv, f.past, f.d}, seed + 3, -2, 2);
    in["past_value"] = gputest::uniform_tensor(dt, {f.b, f.hkv, f.past, f.dv}, seed + 4, -1, 1);
  }
  if (!f.mask.empty()) {
    Tensor r = testing::random_f32(f.mask, seed + 5);
    const int64_t t = f.mask.back();
    // Key 0 always kept (no NaN rows); ~25% of the others dropped.
    auto keep = [&](int64_t i) { return i % t == 0 || r.data<float>()[i] > -0.5f; };
    if (f.bool_mask) {
      Tensor m(DType::kBool, f.mask);
      for (int64_t i = 0; i < m.numel(); ++i) m.data<uint8_t>()[i] = keep(i);
      in["mask"] = m;
    } else {
      in["mask"] = gputest::make_tensor(dt, f.mask, [&](int64_t i) {
        return keep(i) ? 2.0 * r.data<float>()[i] : -std::numeric_limits<double>::infinity();
      });
    }
  }
  return in;
}

// The Attention node itself on the CPU reference (no passes but shape inference).
std::map<std::string, Tensor> cpu_reference(const ModelBuilder& m, const std::map<std::string, Tensor>& in) {
  auto g = onnx::import_model_bytes(m.bytes(), ".", "cpu reference");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  if (!g.ok()) return {};
  EXPECT_TRUE(passes::infer_shapes(*g).ok());
  cpu::GraphExecutor ex(std::make_shared<const ir::Graph>(std::move(*g)));
  auto out = ex.run(in);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

// Builds a CUDA engine from the model, runs it once and compares with the CPU reference of the Attention
// node. lowered: the engine must hold a FusedAttention (no Attention) and run with no CPU fallback; otherwise
// the Attention stays and is the one node that falls back.
void check(const Form& f, DType dt, uint64_t seed, bool lowered) {
  SCOPED_TRACE(label(f, dt));
  const ModelBuilder m = model(f, dt);
  const auto in = inputs(f, dt, seed);
  const auto want = cpu_reference(m, in);
  ASSERT_FALSE(want.empty());
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  auto engine = Builder::build_from_bytes(m.bytes(), cfg);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto hist = engine->op_histogram();
  EXPECT_EQ(hist["FusedAttention"], lowered ? 1 : 0);
  EXPECT_EQ(hist["Attention"], lowered ? 0 : 1);
  auto ctx = engine->create_context();
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  auto got = ctx->infer(in);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  const RunInfo info = ctx->last_run_info();
  if (lowered) EXPECT_GE(info.gpu_nodes, 1);  // (the kept form's one node is the fallback)
  EXPECT_EQ(info.fallback_nodes, lowered ? 0 : 1);
  std::optional<gputest::Tolerance> tol;
  if (dt == DType::kF32) tol = gputest::Tolerance{2e-4, 5e-5};  // f32 sums in another order than double
  gputest::compare_outputs(want, *got, tol);
}

TEST(GpuOnnxAttention, LoweredFourDF16MatchesAttentionReference) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (int64_t s : {1, 7, 127}) {
    Form f;
    f.sq = f.skv = s, f.causal = true;
    check(f, DType::kF16, seed++, true);
  }
  Form cross;  // Sq != Sk, bool mask broadcast over heads, explicit scale, odd head size
  cross.sq = 5, cross.skv = 129, cross.d = cross.dv = 40, cross.mask = {2, 1, 5, 129}, cross.scale = 0.2f;
  check(cross, DType::kF16, seed++, true);
  Form gqa;  // grouped-query heads with an additive mask and causal
  gqa.hq = 4, gqa.hkv = 2, gqa.sq = gqa.skv = 37, gqa.causal = true, gqa.mask = {37, 37},
  gqa.bool_mask = false;
  check(gqa, DType::kF16, seed++, true);
  check(gqa, DType::kF32, seed++, true);
}

TEST(GpuOnnxAttention, LoweredThreeDF16MatchesAttentionReference) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 100;
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{4, 2}, {3, 3}, {1, 1}})
    for (int64_t s : {1, 3, 65}) {
      Form f;
      f.three_d = true, f.hq = hq, f.hkv = hkv, f.sq = f.skv = s, f.causal = s > 1;
      f.mask = {f.b, 1, s, s};
      check(f, DType::kF16, seed++, true);
    }
  Form odd;  // head sizes that are no multiple of 16 and V's differs from Q/K's
  odd.three_d = true, odd.hq = 2, odd.hkv = 1, odd.sq = 9, odd.skv = 33, odd.d = 24, odd.dv = 40;
  check(odd, DType::kF16, seed++, true);
}

TEST(GpuOnnxAttention, UnloweredFormBuildsForCudaAndFallsBackToCpu) {
  KILN_REQUIRE_GPU();
  Form f;  // softcap and a KV cache: FusedAttention cannot express it
  f.hq = 4, f.hkv = 2, f.sq = f.skv = 3, f.past = 5, f.causal = true, f.softcap = 3.f;
  check(f, DType::kF16, 200, false);
}

}  // namespace
}  // namespace kiln
