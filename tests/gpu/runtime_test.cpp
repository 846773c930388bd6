// The CUDA runtime: CUDA graphs per input signature, activation arenas, asynchronous enqueue, several profiles,
// several contexts on several streams at once, shared device weights, memory caps and per-layer profiling.
#include <cuda_runtime.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "runtime/context_state.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

// x[batch, 64] -> softmax(relu(x @ W1 + b1) @ W2 + b2): every node has a CUDA kernel, so runs are capturable.
ModelBuilder mlp(int64_t hidden = 64) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "64"});
  b.initializer("w1", testing::random_f32({64, hidden}, 1));
  b.initializer("b1", testing::random_f32({hidden}, 2));
  b.initializer("w2", testing::random_f32({hidden, 16}, 3));
  b.initializer("b2", testing::random_f32({16}, 4));
  b.node("MatMul", {"x", "w1"}, {"h"}).node("Add", {"h", "b1"}, {"hb"}).node("Relu", {"hb"}, {"r"});
  b.node("MatMul", {"r", "w2"}, {"o"}).node("Add", {"o", "b2"}, {"ob"});
  b.node("Softmax", {"ob"}, {"y"}).attr("axis", int64_t{-1});
  b.output("y", DType::kF32, {"batch", "16"});
  return b;
}

Engine build(const ModelBuilder& b, BackendKind backend, std::vector<OptimizationProfile> profiles = {}) {
  BuildConfig cfg;
  cfg.backend = backend;
  cfg.profiles = std::move(profiles);
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : Engine();
}

OptimizationProfile batch_profile(int64_t lo, int64_t hi) {
  OptimizationProfile p;
  p.inputs["x"] = {{lo, 64}, {hi, 64}, {hi, 64}};
  return p;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a.get_as_double(i) - b.get_as_double(i)));
  return m;
}

// Device buffers bound to a context, for enqueue().
struct Bound {
  void *x = nullptr, *y = nullptr;
  size_t x_bytes = 0, y_bytes = 0;
  Bound(int64_t max_batch) : x_bytes(max_batch * 64 * 4), y_bytes(max_batch * 16 * 4) {
    cudaMalloc(&x, x_bytes);
    cudaMalloc(&y, y_bytes);
  }
  ~Bound() {
    cudaFree(x);
    cudaFree(y);
  }
  void bind(ExecutionContext& ctx) {
    ASSERT_TRUE(ctx.set_tensor_address("x", x, x_bytes).ok());
    ASSERT_TRUE(ctx.set_tensor_address("y", y, y_bytes).ok());
  }
  // Uploads x, runs, downloads y (all on stream).
  Tensor run(ExecutionContext& ctx, const Tensor& input, cudaStream_t stream) {
    EXPECT_TRUE(ctx.set_input_shape("x", input.dims()).ok());
    cudaMemcpyAsync(x, input.raw(), input.nbytes(), cudaMemcpyHostToDevice, stream);
    Status st = ctx.enqueue(stream);
    EXPECT_TRUE(st.ok()) << st.to_string();
    Tensor out(DType::kF32, {input.dims()[0], 16});
    cudaMemcpyAsync(out.raw(), y, out.nbytes(), cudaMemcpyDeviceToHost, stream);
    cudaStreamSynchronize(stream);
    return out;
  }
};

cuda::GraphExecutor& executor_of(ExecutionContext& ctx) { return *cuda_executor(ctx.state_for_testing().backend.get()); }

TEST(GpuRuntime, GraphReplayFollowsNewInputValuesAndShapes) {
  KILN_REQUIRE_GPU();
  ModelBuilder m = mlp();
  Engine cpu = build(m, BackendKind::kCpu, {batch_profile(1, 32)});
  Engine gpu = build(m, BackendKind::kCuda, {batch_profile(1, 32)});
  auto cctx = cpu.create_context();
  auto ctx = gpu.create_context();
  ASSERT_TRUE(ctx.ok() && cctx.ok());
  EXPECT_TRUE(ctx->cuda_graphs());
  Bound buf(32);
  buf.bind(*ctx);
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  int replays = 0;
  // Same shapes with new values (the graph must read the buffers, not remember them), then other shapes, then
  // back to a shape seen before.
  const std::vector<int64_t> batches = {3, 3, 3, 7, 1, 3, 32, 7};
  for (size_t i = 0; i < batches.size(); ++i) {
    Tensor x = testing::random_f32({batches[i], 64}, 100 + i);
    Tensor got = buf.run(*ctx, x, stream);
    auto want = cctx->infer({{"x", x}});
    ASSERT_TRUE(want.ok());
    EXPECT_LT(max_abs_diff(got, want->at("y")), 1e-5) << "run " << i << " batch " << batches[i];
    replays += executor_of(*ctx).last_stats().graph_replay;
    const RunInfo info = ctx->last_run_info();
    EXPECT_EQ(info.cuda_graph, executor_of(*ctx).last_stats().graph_replay);
    EXPECT_GT(info.arena_bytes, 0u);
    EXPECT_GE(info.gpu_nodes, 3);  // two FusedMatMul and the Softmax
    if (!info.cuda_graph) EXPECT_NE(info.not_captured.find("first run"), std::string::npos) << info.not_captured;
  }
  EXPECT_EQ(replays, 4) << "runs 2, 3, 6 and 8 repeat an earlier signature";
  auto dims = ctx->output_shape("y");
  ASSERT_TRUE(dims.ok());
  EXPECT_EQ(*dims, (std::vector<int64_t>{7, 16}));
  cudaStreamDestroy(stream);
}

TEST(GpuRuntime, NoCudaGraphRunsNodeByNodeInTheArena) {
  KILN_REQUIRE_GPU();
  ModelBuilder m = mlp();
  Engine cpu = build(m, BackendKind::kCpu);
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  cfg.cuda_graphs = false;
  auto gpu = Builder::build_from_bytes(m.bytes(), cfg);
  ASSERT_TRUE(gpu.ok());
  EXPECT_FALSE(gpu->info().cuda_graphs);
  auto back = Engine::deserialize(*gpu->serialize());  // the setting survives the engine file
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->info().cuda_graphs);
  auto ctx = back->create_context();
  ASSERT_TRUE(ctx.ok());
  EXPECT_FALSE(ctx->cuda_graphs());
  for (int i = 0; i < 3; ++i) {
    Tensor x = testing::random_f32({5, 64}, 7 + i);
    auto got = ctx->infer({{"x", x}});
    auto want = cpu.create_context()->infer({{"x", x}});
    ASSERT_TRUE(got.ok() && want.ok()) << got.status().to_string();
    EXPECT_LT(max_abs_diff(got->at("y"), want->at("y")), 1e-5);
    EXPECT_FALSE(executor_of(*ctx).last_stats().graph_replay);
    if (i > 0) EXPECT_TRUE(executor_of(*ctx).last_stats().arena);
    if (i > 0) EXPECT_NE(ctx->last_run_info().not_captured.find("off"), std::string::npos);
  }
  ctx->set_cuda_graphs(true);  // a context may turn graphs on
  Tensor x = testing::random_f32({5, 64}, 50);
  ASSERT_TRUE(ctx->infer({{"x", x}}).ok());
  EXPECT_TRUE(executor_of(*ctx).last_stats().graph_replay);
}

// enqueue() lets the nodes that produce graph outputs write the caller's buffers directly (no arena space, no
// copy at the end), also for an output that later nodes read ("r" feeds the second MatMul) and for the value a
// view turns into an output ("ob", read by the Softmax too, is written straight into "ob_flat"'s buffer). Each
// output gets a buffer of exactly its size with guard bytes after it; runs are traced, captured and replayed,
// with graphs on and off; a buffer that overlaps the input falls back to the copy and is still right.
TEST(GpuRuntime, EnqueueWritesGraphOutputsDirectly) {
  KILN_REQUIRE_GPU();
  ModelBuilder m = mlp();
  m.output("r", DType::kF32, {"batch", "64"});
  m.node("Flatten", {"ob"}, {"ob_flat"}).attr("axis", int64_t{1}).output("ob_flat", DType::kF32, {"batch", "16"});
  Engine cpu = build(m, BackendKind::kCpu, {batch_profile(1, 8)});
  Engine gpu = build(m, BackendKind::kCuda, {batch_profile(1, 8)});
  auto cctx = cpu.create_context();
  ASSERT_TRUE(cctx.ok());
  constexpr int64_t kBatch = 7;
  constexpr size_t kGuard = 4096;
  const std::map<std::string, int64_t> widths = {{"y", 16}, {"r", 64}, {"ob_flat", 16}};
  const size_t x_bytes = kBatch * 64 * 4;
  size_t total = x_bytes;
  for (const auto& [name, w] : widths) total += kBatch * w * 4 + kGuard;
  char* mem = nullptr;
  ASSERT_EQ(cudaMalloc(&mem, total), cudaSuccess);
  char* x = mem;
  std::map<std::string, char*> out;  // each output's buffer, its guard right after it
  char* at = x + x_bytes;
  for (const auto& [name, w] : widths) {
    out[name] = at;
    at += kBatch * w * 4 + kGuard;
  }
  auto bytes_of = [&](const std::string& name) { return static_cast<size_t>(kBatch * widths.at(name) * 4); };
  auto guards_intact = [&] {
    std::vector<unsigned char> g(kGuard);
    bool ok = true;
    for (const auto& [name, p] : out) {
      cudaMemcpy(g.data(), p + bytes_of(name), kGuard, cudaMemcpyDeviceToHost);
      for (unsigned char c : g) ok = ok && c == 0xA5;
    }
    return ok;
  };
  for (bool graphs : {true, false}) {
    SCOPED_TRACE(graphs ? "cuda graphs" : "node by node");
    auto ctx = gpu.create_context();
    ASSERT_TRUE(ctx.ok());
    ctx->set_cuda_graphs(graphs);
    ASSERT_TRUE(ctx->set_tensor_address("x", x, x_bytes).ok());
    for (const auto& [name, p] : out) {
      cudaMemset(p + bytes_of(name), 0xA5, kGuard);
      ASSERT_TRUE(ctx->set_tensor_address(name, p, bytes_of(name)).ok());
    }
    ASSERT_TRUE(ctx->set_input_shape("x", {kBatch, 64}).ok());
    for (int run = 0; run < 3; ++run) {
      Tensor in = testing::random_f32({kBatch, 64}, 900 + run);
      cudaMemcpy(x, in.raw(), x_bytes, cudaMemcpyHostToDevice);
      for (const auto& [name, p] : out) cudaMemset(p, 0, bytes_of(name));
      Status st = ctx->enqueue(nullptr);
      ASSERT_TRUE(st.ok()) << st.to_string();
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      auto want = cctx->infer({{"x", in}});
      ASSERT_TRUE(want.ok());
      for (const auto& [name, p] : out) {
        Tensor got(DType::kF32, {kBatch, widths.at(name)});
        cudaMemcpy(got.raw(), p, bytes_of(name), cudaMemcpyDeviceToHost);
        EXPECT_LT(max_abs_diff(got, want->at(name)), 1e-5) << name << " run " << run;
      }
      EXPECT_TRUE(guards_intact()) << "run " << run;
      if (run > 0) EXPECT_EQ(ctx->last_run_info().cuda_graph, graphs);
    }
    // The arena holds no output: infer() (outputs in the arena, then read back) needs more.
    const size_t direct_arena = ctx->last_run_info().arena_bytes;
    auto host = gpu.create_context();
    ASSERT_TRUE(host.ok());
    ASSERT_TRUE(host->infer({{"x", testing::random_f32({kBatch, 64}, 1)}}).ok());
    EXPECT_GT(host->last_run_info().arena_bytes, direct_arena);
  }
  // y bound over x: writing y early would clobber the input the first MatMul still reads, so it is copied at the
  // end (x is then overwritten, which the caller asked for) and the values are right.
  auto ctx = gpu.create_context();
  ASSERT_TRUE(ctx.ok());
  ASSERT_TRUE(ctx->set_tensor_address("x", x, x_bytes).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", x, bytes_of("y")).ok());
  ASSERT_TRUE(ctx->set_tensor_address("r", out["r"], bytes_of("r")).ok());
  ASSERT_TRUE(ctx->set_tensor_address("ob_flat", out["ob_flat"], bytes_of("ob_flat")).ok());
  ASSERT_TRUE(ctx->set_input_shape("x", {kBatch, 64}).ok());
  for (int run = 0; run < 3; ++run) {
    Tensor in = testing::random_f32({kBatch, 64}, 950 + run);
    cudaMemcpy(x, in.raw(), x_bytes, cudaMemcpyHostToDevice);
    ASSERT_TRUE(ctx->enqueue(nullptr).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    auto want = cctx->infer({{"x", in}});
    ASSERT_TRUE(want.ok());
    Tensor got_y(DType::kF32, {kBatch, 16});
    cudaMemcpy(got_y.raw(), x, bytes_of("y"), cudaMemcpyDeviceToHost);
    EXPECT_LT(max_abs_diff(got_y, want->at("y")), 1e-5) << "overlapping, run " << run;
  }
  cudaFree(mem);
}

// GPT-2's lm_head shape (n = 50257: cuBLASLt's fast kernels need n 16-byte aligned) goes through the padded
// cuBLASLt scratch; the context's memory count includes that scratch, which lives in the kernel's per-context
// state rather than in the arena or the pool.
TEST(GpuRuntime, MemoryCountIncludesKernelScratch) {
  KILN_REQUIRE_GPU();
  // m = 2048 (GPT-2 at batch 4): there the padded way timed ~4x faster than the direct one.
  constexpr int64_t kM = 2048, kK = 768, kN = 50257, kPitch = 50264;
  ModelBuilder b(17);
  b.input("x", DType::kF32, {std::to_string(kM), std::to_string(kK)});
  // The weight as GPT-2 ties it, [n, k] and transposed: A's and B's pitches are then 16-byte aligned and only D's
  // is not, which is the case padding D fixes (a [k, n] weight is misaligned itself, and stays direct).
  b.initializer("w", testing::random_f32({kN, kK}, 7));
  b.node("Gemm", {"x", "w"}, {"y"}).attr("transB", int64_t{1});
  b.output("y", DType::kF32, {std::to_string(kM), std::to_string(kN)});
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  cfg.precision = Precision::kF16;
  cfg.reduced_precision_io = true;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok());
  void *x = nullptr, *y = nullptr;
  ASSERT_EQ(cudaMalloc(&x, kM * kK * 2), cudaSuccess);
  std::unique_ptr<void, decltype(&cudaFree)> x_guard(x, cudaFree);
  ASSERT_EQ(cudaMalloc(&y, kM * kN * 2), cudaSuccess);
  std::unique_ptr<void, decltype(&cudaFree)> y_guard(y, cudaFree);
  ASSERT_EQ(cudaMemset(x, 0, kM * kK * 2), cudaSuccess);
  ASSERT_TRUE(ctx->set_tensor_address("x", x, kM * kK * 2).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", y, kM * kN * 2).ok());
  ASSERT_TRUE(ctx->enqueue(nullptr).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  auto layers = ctx->profile_layers(nullptr);
  ASSERT_TRUE(layers.ok()) << layers.status().to_string();
  bool padded = false;
  std::string tactics;
  for (const auto& l : *layers) {
    padded |= l.tactic.find("padded") != std::string::npos;
    tactics += l.tactic + "; ";
  }
  ASSERT_TRUE(padded) << "the lm_head GEMM no longer goes through the padded scratch: " << tactics;
  const size_t outside_arena = ctx->device_memory_bytes() - ctx->last_run_info().arena_bytes;
  EXPECT_GE(outside_arena, static_cast<size_t>(kM * kPitch * 2));
}

TEST(GpuRuntime, EnqueueDoesNotWaitForTheGpu) {
  KILN_REQUIRE_GPU();
  Engine gpu = build(mlp(), BackendKind::kCuda, {batch_profile(1, 8)});
  auto ctx = gpu.create_context();
  ASSERT_TRUE(ctx.ok());
  Bound buf(8);
  buf.bind(*ctx);
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  Tensor x = testing::random_f32({8, 64}, 9);
  buf.run(*ctx, x, stream);  // trace + capture
  // Hold the stream for 300 ms; an enqueue that waits for the GPU would take at least that long.
  ASSERT_EQ(cudaLaunchHostFunc(
                stream, [](void*) { std::this_thread::sleep_for(std::chrono::milliseconds(300)); }, nullptr),
            cudaSuccess);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(ctx->enqueue(stream).ok());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ms, 100) << "enqueue blocked for " << ms << " ms";
  EXPECT_TRUE(executor_of(*ctx).last_stats().graph_replay);
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
}

TEST(GpuRuntime, SeveralProfilesSelectablePerContext) {
  KILN_REQUIRE_GPU();
  ModelBuilder m = mlp();
  Engine cpu = build(m, BackendKind::kCpu);
  Engine gpu = build(m, BackendKind::kCuda, {batch_profile(1, 4), batch_profile(5, 64)});
  ASSERT_EQ(gpu.profiles().size(), 2u);
  auto small = gpu.create_context();
  auto large = gpu.create_context();
  ASSERT_TRUE(small.ok() && large.ok());
  ASSERT_TRUE(large->set_profile(1).ok());
  EXPECT_FALSE(large->set_profile(2).ok());
  Status outside = small->set_input_shape("x", {9, 64});
  EXPECT_EQ(outside.code(), StatusCode::kOutOfRange);
  EXPECT_NE(outside.message().find("profile 0"), std::string::npos) << outside.message();
  EXPECT_NE(outside.message().find("1..4"), std::string::npos) << outside.message();
  EXPECT_EQ(large->set_input_shape("x", {2, 64}).code(), StatusCode::kOutOfRange);
  for (auto [ctx, batch] : {std::pair{&*small, int64_t{3}}, std::pair{&*large, int64_t{40}}}) {
    Tensor x = testing::random_f32({batch, 64}, batch);
    auto got = ctx->infer({{"x", x}});
    auto want = cpu.create_context()->infer({{"x", x}});
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_LT(max_abs_diff(got->at("y"), want->at("y")), 1e-5);
  }
}

TEST(GpuRuntime, ContextsOnSeveralStreamsAtOnce) {
  KILN_REQUIRE_GPU();
  ModelBuilder m = mlp(256);
  Engine cpu = build(m, BackendKind::kCpu);
  Engine gpu = build(m, BackendKind::kCuda, {batch_profile(1, 16)});
  constexpr int kThreads = 4, kIters = 25;
  std::vector<std::vector<Tensor>> inputs(kThreads), wants(kThreads), gots(kThreads);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kIters; ++i) {
      Tensor x = testing::random_f32({1 + (t + i) % 16, 64}, 1000 * t + i);
      inputs[t].push_back(x);
      wants[t].push_back(cpu.create_context()->infer({{"x", x}})->at("y"));
    }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      auto ctx = gpu.create_context();
      ASSERT_TRUE(ctx.ok());
      cudaStream_t stream;
      cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      Bound buf(16);
      buf.bind(*ctx);
      for (int i = 0; i < kIters; ++i) gots[t].push_back(buf.run(*ctx, inputs[t][i], stream));
      cudaStreamDestroy(stream);
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(gots[t].size(), static_cast<size_t>(kIters));
    for (int i = 0; i < kIters; ++i)
      EXPECT_LT(max_abs_diff(gots[t][i], wants[t][i]), 1e-5) << "thread " << t << " iteration " << i;
  }
}

TEST(GpuRuntime, ContextsShareTheEnginesWeights) {
  KILN_REQUIRE_GPU();
  // 256 MiB of weights: a second context must not upload them again.
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "8192"});
  Tensor w(DType::kF32, {8192, 8192});
  std::memset(w.raw(), 0, w.nbytes());
  b.initializer("w", w);
  b.node("MatMul", {"x", "w"}, {"y"});
  b.output("y", DType::kF32, {"batch", "8192"});
  Engine gpu = build(b, BackendKind::kCuda);
  auto c1 = gpu.create_context();
  ASSERT_TRUE(c1.ok());
  size_t free_before = 0, free_after = 0, total = 0;
  cudaDeviceSynchronize();
  cudaMemGetInfo(&free_before, &total);
  auto c2 = gpu.create_context();
  ASSERT_TRUE(c2.ok());
  cudaDeviceSynchronize();
  cudaMemGetInfo(&free_after, &total);
  EXPECT_LT(free_before - free_after, w.nbytes() / 2) << "the second context took " << free_before - free_after;
  auto y = c2->infer({{"x", testing::random_f32({2, 8192}, 3)}});
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  EXPECT_EQ(y->at("y").get_as_double(5), 0.0);
}

TEST(GpuRuntime, MemoryCapIsAClearErrorAndTheContextRecovers) {
  KILN_REQUIRE_GPU();
  Engine gpu = build(mlp(4096), BackendKind::kCuda, {batch_profile(1, 512)});
  auto ctx = gpu.create_context();
  ASSERT_TRUE(ctx.ok());
  Tensor big = testing::random_f32({512, 64}, 1);
  Tensor small = testing::random_f32({2, 64}, 2);
  ctx->set_device_memory_limit(1u << 20);  // activations only: batch 512 needs 8 MiB per hidden layer
  auto r = ctx->infer({{"x", big}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(r.status().message().find("cap"), std::string::npos) << r.status().message();
  auto s = ctx->infer({{"x", small}});
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ctx->set_device_memory_limit(0);
  auto again = ctx->infer({{"x", big}});
  EXPECT_TRUE(again.ok()) << again.status().to_string();
}

TEST(GpuRuntime, ProfileLayersTimesEveryNode) {
  KILN_REQUIRE_GPU();
  Engine gpu = build(mlp(), BackendKind::kCuda, {batch_profile(1, 8)});
  auto ctx = gpu.create_context();
  ASSERT_TRUE(ctx.ok());
  Bound buf(8);
  buf.bind(*ctx);
  ASSERT_TRUE(ctx->set_input_shape("x", {8, 64}).ok());
  auto layers = ctx->profile_layers(nullptr);
  ASSERT_TRUE(layers.ok()) << layers.status().to_string();
  EXPECT_EQ(layers->size(), gpu.info().num_nodes);
  for (const auto& l : *layers) {
    EXPECT_FALSE(l.name.empty());
    EXPECT_EQ(l.placement, "gpu") << l.name;
    EXPECT_GT(l.ms, 0.0) << l.name;
  }
}

TEST(GpuRuntime, ProfileLayerTimesAreGpuTimeNotHostOverhead) {
  KILN_REQUIRE_GPU();
  // 40 tiny Softmax kernels (not pointwise, so none fuse; a few microseconds of GPU work each, far less than
  // the host's per-node work):
  // the per-layer times must add up to about the replayed graph's latency, not to the host's enqueue time.
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"256"});
  std::string v = "x";
  for (int i = 0; i < 40; ++i) {
    const std::string o = "v" + std::to_string(i);
    b.node("Softmax", {v}, {o}).attr("axis", int64_t{-1});
    v = o;
  }
  b.output(v, DType::kF32, {"256"});
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok());
  const Tensor x = testing::random_f32({256}, 5);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ctx->infer({{"x", x}}).ok());
  void *dx = nullptr, *dy = nullptr;
  cudaMalloc(&dx, 1024);
  cudaMalloc(&dy, 1024);
  ASSERT_TRUE(ctx->set_tensor_address("x", dx, 1024).ok());
  ASSERT_TRUE(ctx->set_tensor_address(v, dy, 1024).ok());
  cudaStream_t s;
  cudaStreamCreate(&s);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ctx->enqueue(s).ok());
  cudaEvent_t a, z;
  cudaEventCreate(&a);
  cudaEventCreate(&z);
  cudaEventRecord(a, s);
  constexpr int kRuns = 50;
  for (int i = 0; i < kRuns; ++i) ASSERT_TRUE(ctx->enqueue(s).ok());
  cudaEventRecord(z, s);
  cudaEventSynchronize(z);
  float replay_ms = 0;
  cudaEventElapsedTime(&replay_ms, a, z);
  replay_ms /= kRuns;
  double sum = 1e9;
  for (int r = 0; r < 3; ++r) {  // the best of three: another process on the GPU only makes layers slower
    auto layers = ctx->profile_layers(s);
    ASSERT_TRUE(layers.ok()) << layers.status().to_string();
    double t = 0;
    for (const auto& l : *layers) t += l.ms;
    sum = std::min(sum, t);
  }
  EXPECT_LT(sum, 2.0 * replay_ms + 0.05) << "layer sum " << sum << " ms vs graph replay " << replay_ms << " ms";
  cudaEventDestroy(a);
  cudaEventDestroy(z);
  cudaStreamDestroy(s);
  cudaFree(dx);
  cudaFree(dy);
}

}  // namespace
}  // namespace kiln
