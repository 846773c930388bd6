// Running out of GPU memory during build, load and run: each is a kOutOfMemory Status that says what was being
// allocated and how much was free, nothing is leaked, the context that failed runs once memory is back, and a
// context that already holds its memory keeps running while the GPU is full. The device is filled first with
// plain cudaMalloc blocks, as another process would.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

constexpr int64_t kIn = 1024, kHidden = 8192;
constexpr int64_t kSmall = 2, kBig = 2048;
// Left free while the GPU is "full": less than the weights (64 MiB) and than the hidden activation of the big
// batch (64 MiB), more than a small batch needs.
constexpr size_t kLeaveFree = size_t{24} << 20;

// x[batch, 1024] -> relu(x @ W1[1024, 8192]) @ W2[8192, 1024]: 64 MiB of weights, batch * 32 KiB of hidden.
ModelBuilder wide_mlp() {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", std::to_string(kIn)});
  b.initializer("w1", testing::random_f32({kIn, kHidden}, 1));
  b.initializer("w2", testing::random_f32({kHidden, kIn}, 2));
  b.node("MatMul", {"x", "w1"}, {"h"}).node("Relu", {"h"}, {"r"}).node("MatMul", {"r", "w2"}, {"y"});
  b.output("y", DType::kF32, {"batch", std::to_string(kIn)});
  return b;
}

BuildConfig config(BackendKind backend) {
  BuildConfig cfg;
  cfg.backend = backend;
  OptimizationProfile p;
  p.inputs["x"] = {{1, kIn}, {kSmall, kIn}, {kBig, kIn}};
  cfg.profiles = {p};
  return cfg;
}

size_t free_bytes() {
  size_t free_b = 0, total_b = 0;
  cudaDeviceSynchronize();
  cudaMemGetInfo(&free_b, &total_b);
  return free_b;
}

// Takes the GPU's memory until about `leave` bytes are free, in halving chunks; gives it back when it goes.
class DeviceFiller {
 public:
  explicit DeviceFiller(size_t leave) {
    for (size_t chunk = size_t{1} << 30; chunk >= (size_t{2} << 20); chunk /= 2) {
      while (free_bytes() >= leave + chunk) {
        void* p = nullptr;
        if (cudaMalloc(&p, chunk) != cudaSuccess) {
          cudaGetLastError();
          break;
        }
        blocks_.push_back(p);
      }
    }
  }
  ~DeviceFiller() { release(); }
  DeviceFiller(const DeviceFiller&) = delete;
  DeviceFiller& operator=(const DeviceFiller&) = delete;
  void release() {
    for (void* p : blocks_) cudaFree(p);
    blocks_.clear();
  }

 private:
  std::vector<void*> blocks_;
};

// max |got - want| within a relative tolerance of the outputs' scale (f32, TF32 off, sums of 8192 products).
void expect_close(const Tensor& got, const Tensor& want, const char* what) {
  ASSERT_EQ(got.dims(), want.dims()) << what;
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    diff = std::max(diff, std::fabs(got.get_as_double(i) - want.get_as_double(i)));
    scale = std::max(scale, std::fabs(want.get_as_double(i)));
  }
  EXPECT_LE(diff, 1e-4 * scale + 1e-3) << what << ": outputs differ from the CPU reference (scale " << scale << ")";
}

void expect_oom_message(const Status& st, const std::string& what) {
  EXPECT_EQ(st.code(), StatusCode::kOutOfMemory) << st.to_string();
  EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("free on the GPU"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("bytes"), std::string::npos) << st.message();
}

TEST(GpuOutOfMemory, BuildLoadAndRunFailCleanlyAndRecover) {
  KILN_REQUIRE_GPU();
  const ModelBuilder model = wide_mlp();
  auto cpu = Builder::build_from_bytes(model.bytes(), config(BackendKind::kCpu));
  auto gpu = Builder::build_from_bytes(model.bytes(), config(BackendKind::kCuda));
  ASSERT_TRUE(cpu.ok() && gpu.ok()) << cpu.status().to_string() << " / " << gpu.status().to_string();
  auto file = gpu->serialize();
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto cpu_ctx = cpu->create_context();
  ASSERT_TRUE(cpu_ctx.ok());
  const Tensor small = testing::random_f32({kSmall, kIn}, 10);
  const Tensor big = testing::random_f32({kBig, kIn}, 11);
  auto want_small = cpu_ctx->infer({{"x", small}});
  auto want_big = cpu_ctx->infer({{"x", big}});
  ASSERT_TRUE(want_small.ok() && want_big.ok());

  // Warm-up: every kernel and library the runs below use is loaded before the baseline, so what a failure
  // leaves behind is measured, not lazy module loading.
  {
    auto warm = gpu->create_context();
    ASSERT_TRUE(warm.ok()) << warm.status().to_string();
    auto y = warm->infer({{"x", big}});
    ASSERT_TRUE(y.ok()) << y.status().to_string();
  }
  // A context that holds its small shape's memory before the GPU fills up, and one that has not run yet,
  // with device buffers for the big batch bound (enqueue: no staging copies of its own).
  auto holder = gpu->create_context();
  auto late = gpu->create_context();
  ASSERT_TRUE(holder.ok() && late.ok());
  auto held = holder->infer({{"x", small}});
  ASSERT_TRUE(held.ok()) << held.status().to_string();
  void *x_dev = nullptr, *y_dev = nullptr;
  const size_t io_bytes = static_cast<size_t>(kBig * kIn) * sizeof(float);
  ASSERT_EQ(cudaMalloc(&x_dev, io_bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&y_dev, io_bytes), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(x_dev, big.raw(), io_bytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_TRUE(late->set_tensor_address("x", x_dev, io_bytes).ok());
  ASSERT_TRUE(late->set_tensor_address("y", y_dev, io_bytes).ok());
  ASSERT_TRUE(late->set_input_shape("x", {kBig, kIn}).ok());
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  const size_t baseline = free_bytes();

  DeviceFiller filler(kLeaveFree);
  const size_t left = free_bytes();
  ASSERT_LT(left, kLeaveFree + (size_t{8} << 20)) << "could not fill the GPU";
  {
    SCOPED_TRACE("build with the GPU full");
    auto b = Builder::build_from_bytes(model.bytes(), config(BackendKind::kCuda));
    ASSERT_FALSE(b.ok()) << "built with " << left << " bytes free";
    expect_oom_message(b.status(), "weights");
    EXPECT_NE(b.status().message().find("--no-tactic-timing"), std::string::npos) << b.status().message();
  }
  {
    SCOPED_TRACE("load with the GPU full");
    auto loaded = Engine::deserialize(*file);
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    auto c = loaded->create_context();
    ASSERT_FALSE(c.ok());
    expect_oom_message(c.status(), "the engine's weights");
  }
  {
    SCOPED_TRACE("run with the GPU full");
    const Status st = late->enqueue(stream);
    ASSERT_FALSE(st.ok());
    expect_oom_message(st, "MiB) requested");
    auto y = holder->infer({{"x", small}});  // holds its arena: nothing to allocate
    ASSERT_TRUE(y.ok()) << "a context with its memory must keep running: " << y.status().to_string();
    expect_close(y->at("y"), want_small->at("y"), "small batch while the GPU is full");
  }
  filler.release();
  const size_t after = free_bytes();
  EXPECT_GE(after + (size_t{4} << 20), baseline)
      << "the failed build, load and run left " << (baseline - after) << " bytes allocated";

  // Memory back: the context that failed runs the big batch, a new load runs, the other context still runs.
  const Status again = late->enqueue(stream);
  ASSERT_TRUE(again.ok()) << again.to_string();
  Tensor got(DType::kF32, {kBig, kIn});
  ASSERT_EQ(cudaMemcpyAsync(got.raw(), y_dev, io_bytes, cudaMemcpyDeviceToHost, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  expect_close(got, want_big->at("y"), "big batch after the GPU emptied");
  auto loaded = Engine::deserialize(*file);
  ASSERT_TRUE(loaded.ok());
  auto fresh = loaded->create_context();
  ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
  auto y = fresh->infer({{"x", small}});
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_close(y->at("y"), want_small->at("y"), "new engine after the GPU emptied");
  auto h = holder->infer({{"x", small}});
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  cudaStreamDestroy(stream);
  cudaFree(x_dev);
  cudaFree(y_dev);
}

// An input bigger than the GPU's free memory: the device copy fails naming the input, and the context runs the
// next, smaller input.
TEST(GpuOutOfMemory, InputLargerThanFreeMemoryNamesTheInput) {
  KILN_REQUIRE_GPU();
  size_t free_b = 0, total_b = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  ModelBuilder b(17);
  b.input("x", DType::kU8, {"n"});
  b.node("Identity", {"x"}, {"y"});
  b.output("y", DType::kU8, {"n"});
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  auto engine = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto ctx = engine->create_context();
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  // Untouched host pages: the device allocation fails before anything reads them.
  const Tensor huge = Tensor::uninitialized(DType::kU8, {static_cast<int64_t>(free_b + (size_t{512} << 20))});
  auto r = ctx->infer({{"x", huge}});
  ASSERT_FALSE(r.ok());
  expect_oom_message(r.status(), "input 'x'");
  Tensor small(DType::kU8, {16});
  for (int i = 0; i < 16; ++i) small.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
  auto ok = ctx->infer({{"x", small}});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->at("y").data<uint8_t>()[15], 105);
}

}  // namespace
}  // namespace kiln
