// Tactic timing at build: the engine carries its kernels' choices, contexts reuse them, and a timing cache
// file makes a rebuild time nothing it already knows.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;
using testing::random_f32;

// Conv -> Relu -> Flatten -> MatMul: one cuDNN and one cuBLASLt choice per shape.
ModelBuilder conv_mlp() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3", "16", "16"})
      .initializer("w", random_f32({8, 3, 3, 3}, 1))
      .initializer("b", random_f32({8}, 2))
      .initializer("fc", random_f32({8 * 14 * 14, 10}, 3))
      .node("Conv", {"x", "w", "b"}, {"c"}, "conv")
      .attr("kernel_shape", std::vector<int64_t>{3, 3})
      .node("Relu", {"c"}, {"r"}, "relu")
      .node("Flatten", {"r"}, {"f"}, "flat")
      .node("MatMul", {"f", "fc"}, {"y"}, "fc")
      .output("y", DType::kF32, {"batch", "10"});
  return b;
}

struct Built {
  Result<Engine> engine;
  std::vector<std::string> lines;
};

Built build(const std::string& cache_path, bool timing = true) {
  Built out{Engine(), {}};
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  cfg.precision = Precision::kF16;
  OptimizationProfile p;
  p.inputs["x"] = {{1, 3, 16, 16}, {4, 3, 16, 16}, {7, 3, 16, 16}};
  cfg.profiles = {p};
  cfg.tactic_timing = timing;
  cfg.timing_cache_path = cache_path;
  cfg.progress = [&](std::string_view s) { out.lines.emplace_back(s); };
  out.engine = Builder::build_from_bytes(conv_mlp().bytes(), cfg);
  return out;
}

std::string line_with(const std::vector<std::string>& lines, const std::string& what) {
  for (const auto& l : lines)
    if (l.find(what) != std::string::npos) return l;
  return "";
}

TEST(GpuTacticCache, BuildStoresChoicesAndFileMakesRebuildTimeNothing) {
  KILN_REQUIRE_GPU();
  const auto dir = std::filesystem::temp_directory_path() / "kiln_tactic_cache_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string cache = (dir / "timing.json").string();

  Built first = build(cache);
  ASSERT_TRUE(first.engine.ok()) << first.engine.status().to_string();
  // min 1, opt 4, max 7: three shapes, a conv and a matmul choice each.
  EXPECT_GE(first.engine->info().tactics, 6u);
  const std::string timed = line_with(first.lines, "tactic timing:");
  EXPECT_NE(timed.find("at 3 input shapes"), std::string::npos) << timed;
  ASSERT_TRUE(std::filesystem::exists(cache));
  std::ifstream f(cache);
  const auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j.at("kiln_timing_cache").get<int>(), 1);
  EXPECT_EQ(j.at("entries").size(), first.engine->info().tactics);

  Built second = build(cache);
  ASSERT_TRUE(second.engine.ok()) << second.engine.status().to_string();
  const std::string again = line_with(second.lines, "tactic timing:");
  EXPECT_NE(again.find(": 0 choices timed"), std::string::npos) << again;
  EXPECT_NE(again.find(std::to_string(first.engine->info().tactics) + " reused"), std::string::npos) << again;
  EXPECT_EQ(second.engine->info().tactics, first.engine->info().tactics);

  // A context of the (file round-tripped) engine starts with the choices: its layers report them as cached,
  // and it computes what the engine built without timing computes.
  auto ctx = second.engine->create_context();
  ASSERT_TRUE(ctx.ok());
  const Tensor x = random_f32({4, 3, 16, 16}, 9);
  auto out = ctx->infer({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  void *dx = nullptr, *dy = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, x.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, 4 * 10 * 4), cudaSuccess);
  ASSERT_TRUE(ctx->set_input_shape("x", {4, 3, 16, 16}).ok());
  ASSERT_TRUE(ctx->set_tensor_address("x", dx, x.nbytes()).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", dy, 4 * 10 * 4).ok());
  auto layers = ctx->profile_layers();
  cudaFree(dx);
  cudaFree(dy);
  ASSERT_TRUE(layers.ok()) << layers.status().to_string();
  int cached = 0;
  for (const auto& l : *layers) cached += l.tactic.find("(cached)") != std::string::npos;
  EXPECT_GE(cached, 2) << "the convolution and the matmul reuse their stored choices";

  Built plain = build("", false);
  ASSERT_TRUE(plain.engine.ok());
  EXPECT_EQ(plain.engine->info().tactics, 0u);
  auto pctx = plain.engine->create_context();
  ASSERT_TRUE(pctx.ok());
  auto ref = pctx->infer({{"x", x}});
  ASSERT_TRUE(ref.ok());
  const Tensor& a = out->at("y");
  const Tensor& b = ref->at("y");
  ASSERT_EQ(a.numel(), b.numel());
  for (int64_t i = 0; i < a.numel(); ++i)
    EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 2e-2 * (1 + std::fabs(b.data<float>()[i]))) << i;
  std::filesystem::remove_all(dir);
}

TEST(GpuTacticCache, ForeignCacheFileIsIgnoredAndRewritten) {
  KILN_REQUIRE_GPU();
  const auto dir = std::filesystem::temp_directory_path() / "kiln_tactic_cache_foreign";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string cache = (dir / "timing.json").string();
  {
    std::ofstream f(cache);
    f << R"({"kiln_timing_cache": 1, "gpu": {"name": "some other GPU"}, "entries": {"FusedConv:1": "0 0 0 0"}})";
  }
  Built b = build(cache);
  ASSERT_TRUE(b.engine.ok()) << b.engine.status().to_string();
  EXPECT_NE(line_with(b.lines, "made for another GPU").size(), 0u);
  std::ifstream f(cache);
  const auto j = nlohmann::json::parse(f);
  EXPECT_FALSE(j.at("entries").contains("FusedConv:1")) << "the foreign entry is gone";
  EXPECT_EQ(j.at("entries").size(), b.engine->info().tactics);

  {
    std::ofstream bad(cache);
    bad << "not json";
  }
  Built broken = build(cache);
  ASSERT_FALSE(broken.engine.ok());
  EXPECT_NE(broken.engine.status().message().find("not a kiln timing cache"), std::string::npos)
      << broken.engine.status().message();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln
