// detect_causal_mask on CUDA engines: a causal mask the model builds from Shape(q) (Range, LessOrEqual,
// Where(finfo.min)) becomes FusedAttention causal=1 without the mask, and the f32/f16 engines agree with the
// unfused model on the CPU reference at sequence lengths that are not multiples of the kernel's tiles; the
// GPT-2 skeleton built with a profile (causal=1) agrees with the CPU engine built without one (mask kept).
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "engine/engine_state.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;

// q, k, v [batch, 2, seq, 64]; the mask from Shape(q) as torch builds it, additive with finfo(f32).min.
ModelBuilder causal_mask_model() {
  const std::vector<std::string> dims = {"batch", "2", "seq", "64"};
  ModelBuilder b(18);
  b.input("q", DType::kF32, dims).input("k", DType::kF32, dims).input("v", DType::kF32, dims);
  b.initializer("c0", i64_tensor({}, {0}))
      .initializer("c1", i64_tensor({}, {1}))
      .initializer("ax0", i64_tensor({1}, {0}))
      .initializer("ax1", i64_tensor({1}, {1}))
      .initializer("zero", f32_tensor({}, {0.f}))
      .initializer("lowest", f32_tensor({}, {std::numeric_limits<float>::lowest()}))
      .initializer("scale", f32_tensor({}, {0.125f}));
  b.node("Shape", {"q"}, {"seq_1d"})
      .attr("start", int64_t{2})
      .attr("end", int64_t{3})
      .node("Squeeze", {"seq_1d", "ax0"}, {"seq"})
      .node("Range", {"c0", "seq", "c1"}, {"ar"})
      .node("Unsqueeze", {"ar", "ax0"}, {"cols"})
      .node("Unsqueeze", {"ar", "ax1"}, {"rows"})
      .node("LessOrEqual", {"cols", "rows"}, {"keep"})
      .node("Where", {"keep", "zero", "lowest"}, {"add_mask"})
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

Result<Engine> build(const std::string& bytes, BackendKind backend, Precision p,
                     std::vector<OptimizationProfile> profiles, std::vector<std::string>* progress) {
  BuildConfig cfg;
  cfg.backend = backend;
  cfg.precision = p;
  cfg.profiles = std::move(profiles);
  if (progress) cfg.progress = [progress](std::string_view s) { progress->emplace_back(s); };
  return Builder::build_from_bytes(bytes, cfg);
}

// The engine's graph: `causal` FusedAttention nodes with causal=1 and no mask input.
void expect_causal_nodes(const Engine& e, int causal, const std::vector<std::string>& progress) {
  int n = 0;
  for (const auto& node : e.state()->graph->nodes)
    if (node.op_type == "FusedAttention") {
      EXPECT_EQ(node.attr_int("causal", 0), 1) << node.name;
      EXPECT_EQ(node.inputs.size(), 3u) << node.name;
      ++n;
    }
  EXPECT_EQ(n, causal);
  const std::string want =
      "pass detect_causal_mask: " + std::to_string(causal) + " attention masks are causal";
  bool reported = false;
  for (const auto& l : progress) reported |= l == want;
  EXPECT_TRUE(reported) << want;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(t.get_as_double(i)));
  return m;
}

TEST(GpuDetectCausalMask, ShapeBuiltMaskRunsCausalF32AndF16) {
  KILN_REQUIRE_GPU();
  const ModelBuilder b = causal_mask_model();
  OptimizationProfile prof;
  for (const char* x : {"q", "k", "v"}) prof.inputs[x] = {{1, 2, 1, 64}, {2, 2, 64, 64}, {2, 2, 256, 64}};
  auto g = onnx::import_model_bytes(b.bytes(), ".", "reference");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_TRUE(passes::infer_shapes(*g).ok());
  cpu::GraphExecutor reference(std::make_shared<const ir::Graph>(std::move(*g)));
  for (Precision p : {Precision::kF32, Precision::kF16}) {
    SCOPED_TRACE(std::string(precision_name(p)));
    std::vector<std::string> progress;
    auto e = build(b.bytes(), BackendKind::kCuda, p, {prof}, &progress);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    expect_causal_nodes(*e, 1, progress);
    EXPECT_EQ(e->op_histogram().count("Range"), 0u);
    auto ctx = e->create_context();
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    for (int64_t seq : {1, 3, 7, 63, 64, 65, 127, 200, 256}) {
      SCOPED_TRACE("seq " + std::to_string(seq));
      std::map<std::string, Tensor> in;
      uint64_t seed = 100 + seq;
      for (const char* x : {"q", "k", "v"})
        in[x] = gputest::random_tensor(DType::kF32, {2, 2, seq, 64}, seed++);
      for (const char* x : {"q", "k"})  // scores spread enough that a leaked key would show
        for (int64_t i = 0; i < in[x].numel(); ++i) in[x].data<float>()[i] *= 2;
      auto want = reference.run(in);
      ASSERT_TRUE(want.ok()) << want.status().to_string();
      auto got = ctx->infer(in);
      ASSERT_TRUE(got.ok()) << got.status().to_string();
      const Tensor &w = want->at("y"), &o = got->at("y");
      ASSERT_EQ(o.dims(), w.dims());
      const double tol = p == Precision::kF16 ? 1e-2 : 1e-4;
      int64_t bad = 0;
      for (int64_t i = 0; i < w.numel(); ++i) {
        const double a = o.get_as_double(i), x = w.get_as_double(i);
        if (!(std::fabs(a - x) <= tol * (1 + std::fabs(x))) && bad++ < 5)
          ADD_FAILURE() << "y[" << i << "]: gpu " << a << " vs cpu " << x;
      }
      EXPECT_EQ(bad, 0);
    }
  }
}

// GPT-2 (finfo.min mask shared by 12 layers, with transformers' packed-sequence check) on CUDA with a
// profile: all 12 attentions causal=1; against the CPU engine built without a profile, which keeps and reads
// the mask.
TEST(GpuDetectCausalMask, Gpt2CausalEngineMatchesMaskedCpu) {
  KILN_REQUIRE_GPU();
  const std::string bytes = testing::load_skeleton("gpt2");
  OptimizationProfile prof;
  prof.inputs["input_ids"] = {{1, 1}, {2, 64}, {2, 130}};
  std::vector<std::string> cpu_progress;
  auto ref = build(bytes, BackendKind::kCpu, Precision::kF32, {}, &cpu_progress);
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  int masked = 0;
  for (const auto& node : ref->state()->graph->nodes)
    masked += node.op_type == "FusedAttention" && node.inputs.size() == 4;
  EXPECT_EQ(masked, 12) << "the reference should keep the mask (no profile)";
  auto ref_ctx = ref->create_context();
  ASSERT_TRUE(ref_ctx.ok());
  for (Precision p : {Precision::kF32, Precision::kF16}) {
    SCOPED_TRACE(std::string(precision_name(p)));
    std::vector<std::string> progress;
    auto e = build(bytes, BackendKind::kCuda, p, {prof}, &progress);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    expect_causal_nodes(*e, 12, progress);
    auto ctx = e->create_context();
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    for (auto [batch, seq] : {std::pair<int64_t, int64_t>{1, 1}, {2, 7}, {2, 65}, {1, 130}}) {
      SCOPED_TRACE("input_ids [" + std::to_string(batch) + "," + std::to_string(seq) + "]");
      Tensor ids(DType::kI64, {batch, seq});
      for (int64_t i = 0; i < ids.numel(); ++i) ids.data<int64_t>()[i] = (i * 271 + 3) % 50257;
      auto want = ref_ctx->infer({{"input_ids", ids}});
      auto got = ctx->infer({{"input_ids", ids}});
      ASSERT_TRUE(want.ok()) << want.status().to_string();
      ASSERT_TRUE(got.ok()) << got.status().to_string();
      for (const auto& [name, w] : *want) {
        const Tensor& o = got->at(name);
        ASSERT_EQ(o.dims(), w.dims()) << name;
        double err = 0, ab = 0, aa = 0, bb = 0;
        for (int64_t i = 0; i < w.numel(); ++i) {
          const double x = o.get_as_double(i), y = w.get_as_double(i);
          err = std::max(err, std::fabs(x - y));
          ab += x * y, aa += x * x, bb += y * y;
        }
        // f32: as FusedSkeletonsMatchCpu; f16: as the other f16 engines (12 layers of f16 rounding).
        const double tol = (p == Precision::kF16 ? 3e-2 : 1e-3) * std::max(1.0, max_abs(w));
        EXPECT_LE(err, tol) << name << " max |gpu - cpu| = " << err;
        EXPECT_GE(ab / std::sqrt(aa * bb + 1e-300), 0.999) << name;
      }
    }
  }
}

}  // namespace
}  // namespace kiln
