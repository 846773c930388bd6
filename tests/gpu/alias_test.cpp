// A KV cache updated in place on the CUDA backend: decode steps on one device cache buffer that is never
// rebound. Where the scatter is the cache's last reader, the new row is written straight into the input's
// buffer (the cache is not in the activation arena and nothing copies it); where a node reads the old cache
// after the scatter, the output is computed aside and copied there after the run. Every step is checked
// against the values the CPU test expects, and runs after the first replay one CUDA graph.
#include <cuda_runtime.h>

#include <vector>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "support/kv_cache_model.h"

namespace kiln {
namespace {

using testing::kKvWidth;

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t n) { EXPECT_EQ(cudaMalloc(&p, n), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(p); }
};

void decode_on_gpu(bool read_past_after, bool bind_present_to_past) {
  constexpr int64_t kBatch = 3, kLen = 1024, kSteps = 6;
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  cfg.aliases = {{"new_cache", "cache"}};
  auto e = Builder::build_from_bytes(testing::kv_cache_step("cache", "new_cache", kLen, read_past_after).bytes(), cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  const size_t cache_bytes = kBatch * kLen * kKvWidth * sizeof(float), row_bytes = kBatch * kKvWidth * sizeof(float);
  DeviceBuffer cache(cache_bytes), x(row_bytes), y(row_bytes), z(row_bytes), pos(sizeof(int64_t));
  ASSERT_EQ(cudaMemset(cache.p, 0, cache_bytes), cudaSuccess);
  ASSERT_TRUE(ctx->set_input_shape("x", {kBatch, kKvWidth}).ok());
  ASSERT_TRUE(ctx->set_input_shape("pos", {1}).ok());
  ASSERT_TRUE(ctx->set_input_shape("cache", {kBatch, kLen, kKvWidth}).ok());
  ASSERT_TRUE(ctx->set_tensor_address("x", x.p, row_bytes).ok());
  ASSERT_TRUE(ctx->set_tensor_address("pos", pos.p, sizeof(int64_t)).ok());
  ASSERT_TRUE(ctx->set_tensor_address("cache", cache.p, cache_bytes).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", y.p, row_bytes).ok());
  if (read_past_after) ASSERT_TRUE(ctx->set_tensor_address("z", z.p, row_bytes).ok());
  if (bind_present_to_past) ASSERT_TRUE(ctx->set_tensor_address("new_cache", cache.p, cache_bytes).ok());

  std::vector<float> want(kBatch * kLen * kKvWidth, 0.f), host_x(kBatch * kKvWidth), got(want.size()),
      got_y(host_x.size()), got_z(host_x.size());
  for (int64_t step = 0; step < kSteps; ++step) {
    SCOPED_TRACE(step);
    const int64_t p = (step * 389) % kLen;  // positions out of order: the graph must read pos every replay
    for (size_t i = 0; i < host_x.size(); ++i) host_x[i] = static_cast<float>((i * 7 + step * 3) % 11) - 5.f;
    std::vector<float> old_sum(host_x.size(), 0.f), new_sum(host_x.size(), 0.f);
    for (int64_t b = 0; b < kBatch; ++b)
      for (int64_t t = 0; t < kLen; ++t)
        for (int64_t j = 0; j < kKvWidth; ++j) old_sum[b * kKvWidth + j] += want[(b * kLen + t) * kKvWidth + j];
    for (int64_t b = 0; b < kBatch; ++b) {
      const auto k = testing::kv_key_row(&host_x[b * kKvWidth]);
      for (int64_t j = 0; j < kKvWidth; ++j) want[(b * kLen + p) * kKvWidth + j] = k[j];
    }
    for (int64_t b = 0; b < kBatch; ++b)
      for (int64_t t = 0; t < kLen; ++t)
        for (int64_t j = 0; j < kKvWidth; ++j) new_sum[b * kKvWidth + j] += want[(b * kLen + t) * kKvWidth + j];
    ASSERT_EQ(cudaMemcpy(x.p, host_x.data(), row_bytes, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(pos.p, &p, sizeof(int64_t), cudaMemcpyHostToDevice), cudaSuccess);
    Status s = ctx->enqueue(nullptr);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(got.data(), cache.p, cache_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(got_y.data(), y.p, row_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    int bad = 0;
    for (size_t i = 0; i < want.size(); ++i)
      if (got[i] != want[i] && bad++ < 5) ADD_FAILURE() << "cache[" << i << "] " << got[i] << " vs " << want[i];
    ASSERT_EQ(bad, 0);
    for (size_t i = 0; i < got_y.size(); ++i) EXPECT_NEAR(got_y[i], new_sum[i], 1e-3) << "y[" << i << "]";
    if (read_past_after) {
      ASSERT_EQ(cudaMemcpy(got_z.data(), z.p, row_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
      for (size_t i = 0; i < got_z.size(); ++i)
        EXPECT_NEAR(got_z[i], new_sum[i] - old_sum[i], 1e-3) << "z[" << i << "]";
    }
    const RunInfo info = ctx->last_run_info();
    if (step >= 2) EXPECT_TRUE(info.cuda_graph) << info.not_captured;
    if (step >= 1) {
      // In place: the cache never enters the arena. Copied: the new cache is computed in the arena first.
      if (read_past_after)
        EXPECT_GE(info.arena_bytes, cache_bytes);
      else
        EXPECT_LT(info.arena_bytes, cache_bytes);
    }
  }
}

TEST(GpuAlias, CacheIsUpdatedInPlaceWhenTheOutputIsUnbound) {
  KILN_REQUIRE_GPU();
  decode_on_gpu(false, false);
}

TEST(GpuAlias, CacheIsUpdatedInPlaceWhenTheOutputIsBoundToTheInputBuffer) {
  KILN_REQUIRE_GPU();
  decode_on_gpu(false, true);
}

TEST(GpuAlias, ANodeReadingTheOldCacheAfterTheScatterGetsACopiedUpdate) {
  KILN_REQUIRE_GPU();
  decode_on_gpu(true, false);
}

}  // namespace
}  // namespace kiln
