// The shipped models on the CUDA backend against the float64 references, and the runtime's GPU error paths.
#include <cuda_runtime.h>

#include <cstring>

#include "gpu/gpu_harness.h"
#include "support/engine_bytes.h"
#include "kiln/tensor_io.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

const std::string kModels = std::string(KILN_SOURCE_DIR) + "/models/";

Engine build_cuda(const std::string& model, const std::string& input, std::vector<int64_t> min,
                  std::vector<int64_t> opt, std::vector<int64_t> max) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  OptimizationProfile p;
  p.inputs[input] = {min, opt, max};
  cfg.profiles = {p};
  auto e = Builder::build_from_file(kModels + model, cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : Engine();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a.get_as_double(i) - b.get_as_double(i)));
  return m;
}

TEST(GpuModels, TinyCnnAndAttentionMatchReference) {
  KILN_REQUIRE_GPU();
  for (auto [model, input, min, opt, max] :
       {std::tuple<std::string, std::string, std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>>{
            "tiny_cnn", "image", {1, 3, 32, 32}, {4, 3, 32, 32}, {8, 3, 32, 32}},
        {"tiny_attention", "tokens", {1, 1, 32}, {2, 16, 32}, {4, 64, 32}}}) {
    SCOPED_TRACE(model);
    Engine e = build_cuda(model + ".onnx", input, min, opt, max);
    ASSERT_EQ(e.info().backend, BackendKind::kCuda);
    auto x = io::load_npy(kModels + model + ".input.npy");
    auto want = io::load_npy(kModels + model + ".expected.npy");
    ASSERT_TRUE(x.ok() && want.ok());
    auto ctx = e.create_context();
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    auto out = ctx->infer({{input, *x}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    const Tensor& y = out->begin()->second;
    ASSERT_EQ(y.dims(), want->dims());
    EXPECT_LT(max_abs_diff(y, *want), 1e-4);
    // The engine file round-trips with its GPU manifest.
    auto bytes = e.serialize();
    ASSERT_TRUE(bytes.ok());
    auto back = Engine::deserialize(*bytes);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_NE(back->info().gpu_json.find("\"sm\":\"9.0\""), std::string::npos) << back->info().gpu_json;
  }
}

TEST(GpuModels, EnqueueWithDeviceBuffersAndBadAddresses) {
  KILN_REQUIRE_GPU();
  Engine e = build_cuda("tiny_attention.onnx", "tokens", {1, 1, 32}, {2, 16, 32}, {4, 64, 32});
  auto ctx = e.create_context();
  ASSERT_TRUE(ctx.ok());
  auto x = io::load_npy(kModels + "tiny_attention.input.npy");
  auto want = io::load_npy(kModels + "tiny_attention.expected.npy");
  void *dx = nullptr, *dy = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, x->nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, want->nbytes()), cudaSuccess);
  cudaMemcpy(dx, x->raw(), x->nbytes(), cudaMemcpyHostToDevice);
  EXPECT_FALSE(ctx->set_tensor_address("tokens", nullptr, 0).ok());
  Status misaligned = ctx->set_tensor_address("tokens", static_cast<char*>(dx) + 4, x->nbytes());
  ASSERT_FALSE(misaligned.ok());
  EXPECT_NE(misaligned.message().find("16-byte aligned"), std::string::npos);
  ASSERT_TRUE(ctx->set_input_shape("tokens", x->dims()).ok());
  ASSERT_TRUE(ctx->set_tensor_address("tokens", dx, x->nbytes()).ok());
  // Too small an output buffer: an error, and the context keeps working.
  ASSERT_TRUE(ctx->set_tensor_address("out", dy, want->nbytes() / 2).ok());
  Status small = ctx->enqueue(nullptr);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.message().find("buffer holds"), std::string::npos) << small.message();
  ASSERT_TRUE(ctx->set_tensor_address("out", dy, want->nbytes()).ok());
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  ASSERT_TRUE(ctx->enqueue(stream).ok());
  cudaStreamSynchronize(stream);
  Tensor y(DType::kF32, want->dims());
  cudaMemcpy(y.raw(), dy, y.nbytes(), cudaMemcpyDeviceToHost);
  EXPECT_LT(max_abs_diff(y, *want), 1e-4);
  // Outside the profile.
  EXPECT_EQ(ctx->set_input_shape("tokens", {5, 3, 32}).code(), StatusCode::kOutOfRange);
  cudaStreamDestroy(stream);
  cudaFree(dx);
  cudaFree(dy);
}

TEST(GpuModels, EngineForAnotherSmIsRefused) {
  KILN_REQUIRE_GPU();
  Engine e = build_cuda("tiny_cnn.onnx", "image", {1, 3, 32, 32}, {1, 3, 32, 32}, {2, 3, 32, 32});
  std::string bytes = *e.serialize();
  // Same-length manifest edit, then the file re-signed so the loader's GPU check is what refuses it.
  auto pos = bytes.find("\"sm\":\"9.0\"");
  ASSERT_NE(pos, std::string::npos);
  bytes.replace(pos, 10, "\"sm\":\"8.0\"");
  testing::resign(bytes);
  auto r = Engine::deserialize(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("built for GPU"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("sm_8.0"), std::string::npos);
  EXPECT_NE(r.status().message().find("kiln build"), std::string::npos);
}

TEST(GpuModels, MemoryCapGivesClearErrorAndPoolKeepsWorking) {
  KILN_REQUIRE_GPU();
  auto pool = std::make_shared<cuda::MemoryPool>(1 << 20);  // blocks return to a pool owned by a shared_ptr
  auto a = pool->allocate(600 << 10);
  ASSERT_TRUE(a.ok());
  auto b = pool->allocate(600 << 10);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(b.status().message().find("cap"), std::string::npos);
  a = Result<std::shared_ptr<void>>(Status(StatusCode::kInternal, "released"));
  auto c = pool->allocate(600 << 10);  // the released block is reused
  EXPECT_TRUE(c.ok()) << c.status().to_string();
}

}  // namespace
}  // namespace kiln
