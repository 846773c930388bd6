// Engine bundles on the CUDA backend: each run goes to the member that takes its shapes, with the CPU engine's
// answer; members of one precision upload their shared weights once; precision members route and pin.
#include <cmath>
#include <cstring>

#include "backends/cuda/device_weights.h"
#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "engine/engine_state.h"
#include "support/test_nets.h"

namespace kiln {
namespace {

Engine build(BackendKind backend, int64_t lo, int64_t hi, Precision precision = Precision::kF32) {
  BuildConfig cfg;
  cfg.backend = backend;
  cfg.precision = precision;
  OptimizationProfile p;
  p.inputs["x"] = {{lo, 3, 11, 9}, {hi, 3, 11, 9}, {hi, 3, 11, 9}};
  cfg.profiles.push_back(p);
  auto e = Builder::build_from_bytes(testing::conv_residual_net().bytes(), cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return *e;
}

void expect_close(const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.dims(), want.dims());
  for (int64_t i = 0; i < want.numel(); ++i)
    ASSERT_NEAR(got.get_as_double(i), want.get_as_double(i), tol * (1 + std::fabs(want.get_as_double(i)))) << i;
}

TEST(GpuBundle, RoutesByShapeAndMatchesCpu) {
  KILN_REQUIRE_GPU();
  auto bundle = Engine::bundle({build(BackendKind::kCuda, 1, 4), build(BackendKind::kCuda, 5, 32)});
  ASSERT_TRUE(bundle.ok()) << bundle.status().to_string();
  auto cpu = build(BackendKind::kCpu, 1, 32).create_context();
  auto ctx = bundle->create_context();
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  for (int64_t batch : {1, 4, 5, 32, 3, 7}) {
    SCOPED_TRACE(batch);
    Tensor x = testing::random_f32({batch, 3, 11, 9}, static_cast<uint64_t>(batch));
    for (int replay = 0; replay < 3; ++replay) {
      auto out = ctx->infer({{"x", x}});
      ASSERT_TRUE(out.ok()) << out.status().to_string();
      auto want = cpu->infer({{"x", x}});
      ASSERT_TRUE(want.ok());
      for (const auto& [name, t] : *want) expect_close(out->at(name), t, 1e-4);
    }
    EXPECT_EQ(ctx->last_run_info().bundle_member, batch <= 4 ? 0 : 1);
  }
  // Both members ran, on two member contexts, each holding its own activation memory.
  EXPECT_GT(ctx->device_memory_bytes(), 0u);
}

TEST(GpuBundle, MembersOfOnePrecisionUploadTheirWeightsOnce) {
  KILN_REQUIRE_GPU();
  auto bundle = Engine::bundle({build(BackendKind::kCuda, 1, 4), build(BackendKind::kCuda, 5, 32)});
  ASSERT_TRUE(bundle.ok()) << bundle.status().to_string();
  const auto members = bundle->members();
  auto first = members[0].state()->gpu_weights->get(*members[0].state()->graph);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  auto second = members[1].state()->gpu_weights->get(*members[1].state()->graph);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_GT((*first)->bytes(), 0u);
  EXPECT_EQ((*second)->bytes(), 0u) << "the second member uploaded weights the first had already";
  for (const auto& [name, t] : members[1].state()->graph->initializers) {
    if (!t.nbytes()) continue;
    const cuda::DeviceTensor* a = (*first)->find(name);
    const cuda::DeviceTensor* b = (*second)->find(name);
    ASSERT_NE(b, nullptr) << name;
    if (a) EXPECT_EQ(a->data, b->data) << name;
  }
}

TEST(GpuBundle, PrecisionMembersRouteToTheFirstAndPin) {
  KILN_REQUIRE_GPU();
  auto bundle = Engine::bundle({build(BackendKind::kCuda, 1, 8, Precision::kF16), build(BackendKind::kCuda, 1, 8)});
  ASSERT_TRUE(bundle.ok()) << bundle.status().to_string();
  EXPECT_EQ(bundle->info().precision, "f16+f32");
  auto cpu = build(BackendKind::kCpu, 1, 8).create_context();
  Tensor x = testing::random_f32({3, 3, 11, 9}, 11);
  auto want = cpu->infer({{"x", x}});
  ASSERT_TRUE(want.ok());
  auto ctx = bundle->create_context();
  auto f16 = ctx->infer({{"x", x}});
  ASSERT_TRUE(f16.ok()) << f16.status().to_string();
  EXPECT_EQ(ctx->last_run_info().bundle_member, 0);
  for (const auto& [name, t] : *want) expect_close(f16->at(name), t, 3e-2);
  ASSERT_TRUE(ctx->set_profile(1).ok());
  auto f32 = ctx->infer({{"x", x}});
  ASSERT_TRUE(f32.ok()) << f32.status().to_string();
  EXPECT_EQ(ctx->last_run_info().bundle_member, 1);
  for (const auto& [name, t] : *want) expect_close(f32->at(name), t, 1e-4);
}

TEST(GpuBundle, EnqueueWithDeviceBuffersSwitchesMembers) {
  KILN_REQUIRE_GPU();
  auto bundle = Engine::bundle({build(BackendKind::kCuda, 1, 4), build(BackendKind::kCuda, 5, 32)});
  ASSERT_TRUE(bundle.ok());
  auto cpu = build(BackendKind::kCpu, 1, 32).create_context();
  auto ctx = bundle->create_context();
  const std::string out_name = bundle->outputs()[0].name;
  void *dx = nullptr, *dy = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, 32 * 3 * 11 * 9 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, 1 << 20), cudaSuccess);
  for (int64_t batch : {2, 20, 2}) {
    SCOPED_TRACE(batch);
    Tensor x = testing::random_f32({batch, 3, 11, 9}, static_cast<uint64_t>(batch) + 1);
    ASSERT_EQ(cudaMemcpy(dx, x.raw(), x.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_TRUE(ctx->set_input_shape("x", x.dims()).ok());
    ASSERT_TRUE(ctx->set_tensor_address("x", dx, x.nbytes()).ok());
    ASSERT_TRUE(ctx->set_tensor_address(out_name, dy, 1 << 20).ok());
    auto dims = ctx->output_shape(out_name);
    ASSERT_TRUE(dims.ok()) << dims.status().to_string();
    ASSERT_TRUE(ctx->enqueue(nullptr).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(ctx->last_run_info().bundle_member, batch <= 4 ? 0 : 1);
    Tensor got(DType::kF32, *dims);
    ASSERT_EQ(cudaMemcpy(got.raw(), dy, got.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    auto want = cpu->infer({{"x", x}});
    ASSERT_TRUE(want.ok());
    expect_close(got, want->at(out_name), 1e-4);
  }
  cudaFree(dx);
  cudaFree(dy);
}

}  // namespace
}  // namespace kiln
