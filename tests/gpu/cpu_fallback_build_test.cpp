// kiln build on the CUDA backend names every node it leaves to the CPU reference with why, refuses them when
// asked (--no-cpu-fallback), and the engine with a fallback still computes what the CPU backend does.
#include <map>
#include <string>
#include <vector>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

// x[batch, 3, 3] -> -det(relu(x)): Det has no CUDA kernel.
ModelBuilder det_model() {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "3", "3"})
      .node("Relu", {"x"}, {"r"}, "relu")
      .node("Det", {"r"}, {"d"}, "determinant")
      .node("Neg", {"d"}, {"y"}, "negate")
      .output("y", DType::kF32, {"batch"});
  return b;
}

BuildConfig cuda_config(std::vector<std::string>* lines) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  OptimizationProfile p;
  p.inputs["x"] = {{1, 3, 3}, {4, 3, 3}, {7, 3, 3}};
  cfg.profiles = {p};
  cfg.progress = [lines](std::string_view s) { lines->emplace_back(s); };
  return cfg;
}

TEST(GpuCpuFallback, BuildNamesTheNodeAndTheEngineMatchesTheCpuBackend) {
  KILN_REQUIRE_GPU();
  std::vector<std::string> lines;
  auto gpu = Builder::build_from_bytes(det_model().bytes(), cuda_config(&lines));
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  bool named = false;
  for (const auto& l : lines) named |= l.find("cpu fallback: node 'determinant' (Det)") != std::string::npos;
  EXPECT_TRUE(named) << "no progress line names the Det node";

  BuildConfig cpu_cfg;
  cpu_cfg.backend = BackendKind::kCpu;
  auto cpu = Builder::build_from_bytes(det_model().bytes(), cpu_cfg);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  Tensor x = testing::random_f32({5, 3, 3}, 11);
  auto want = cpu->create_context()->infer({{"x", x}});
  auto got = gpu->create_context()->infer({{"x", x}});
  ASSERT_TRUE(want.ok() && got.ok()) << want.status().to_string() << " / " << got.status().to_string();
  const Tensor& w = want->at("y");
  const Tensor& g = got->at("y");
  ASSERT_EQ(g.dims(), w.dims());
  for (int64_t i = 0; i < w.numel(); ++i) EXPECT_NEAR(g.data<float>()[i], w.data<float>()[i], 1e-4f) << i;
}

TEST(GpuCpuFallback, NoCpuFallbackRefusesTheBuildNamingNodeOpAndReason) {
  KILN_REQUIRE_GPU();
  std::vector<std::string> lines;
  BuildConfig cfg = cuda_config(&lines);
  cfg.allow_cpu_fallback = false;
  auto e = Builder::build_from_bytes(det_model().bytes(), cfg);
  ASSERT_FALSE(e.ok());
  const std::string m = e.status().message();
  EXPECT_EQ(e.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(m.find("--no-cpu-fallback"), std::string::npos) << m;
  EXPECT_NE(m.find("'determinant' (Det)"), std::string::npos) << m;
  EXPECT_NE(m.find("no kernel for Det"), std::string::npos) << m;
  EXPECT_EQ(m.find("relu"), std::string::npos) << "a GPU node was listed: " << m;
}


// Head dim 640 is past the attention kernel's limit (can_implement): planned on the CPU reference at build
// instead of failing inside the kernel at the first run.
TEST(GpuCpuFallback, AShapeTheKernelCannotTakeIsPlannedAtBuildAndRunsRight) {
  KILN_REQUIRE_GPU();
  ModelBuilder b(17);
  b.input("q", DType::kF32, {"batch", "2", "5", "640"})
      .input("k", DType::kF32, {"batch", "2", "7", "640"})
      .input("v", DType::kF32, {"batch", "2", "7", "640"})
      .node("FusedAttention", {"q", "k", "v"}, {"y"}, "attention")
      .domain("kiln")
      .output("y", DType::kF32, {"batch", "2", "5", "640"});
  std::vector<std::string> lines;
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  OptimizationProfile p;
  p.inputs["q"] = {{1, 2, 5, 640}, {2, 2, 5, 640}, {3, 2, 5, 640}};
  p.inputs["k"] = p.inputs["v"] = {{1, 2, 7, 640}, {2, 2, 7, 640}, {3, 2, 7, 640}};
  cfg.profiles = {p};
  cfg.progress = [&lines](std::string_view s) { lines.emplace_back(s); };
  auto gpu = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  bool named = false;
  for (const auto& l : lines) named |= l.find("head dims D=640 Dv=640 (at most 512)") != std::string::npos;
  EXPECT_TRUE(named) << "no progress line names the attention's shape limit";

  BuildConfig cpu_cfg;
  cpu_cfg.backend = BackendKind::kCpu;
  auto cpu = Builder::build_from_bytes(b.bytes(), cpu_cfg);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  const std::map<std::string, Tensor> in = {{"q", testing::random_f32({3, 2, 5, 640}, 1)},
                                            {"k", testing::random_f32({3, 2, 7, 640}, 2)},
                                            {"v", testing::random_f32({3, 2, 7, 640}, 3)}};
  auto want = cpu->create_context()->infer(in);
  auto got = gpu->create_context()->infer(in);
  ASSERT_TRUE(want.ok() && got.ok()) << want.status().to_string() << " / " << got.status().to_string();
  const Tensor& w = want->at("y");
  const Tensor& g = got->at("y");
  ASSERT_EQ(g.dims(), w.dims());
  for (int64_t i = 0; i < w.numel(); ++i) ASSERT_NEAR(g.data<float>()[i], w.data<float>()[i], 1e-4f) << i;

  cfg.allow_cpu_fallback = false;
  auto refused = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("'attention' (FusedAttention)"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("[1,2,5,640]"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("(at profile 0 min)"), std::string::npos) << refused.status().message();
}

}  // namespace
}  // namespace kiln
