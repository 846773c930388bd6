// GEMM layouts on the GPU: lt_matmul's padded mode for a D whose row pitch is not 16-byte aligned (odd n in
// f16/bf16, n not a multiple of 4 in f32), against a double reference on the host: forced padded, direct and
// automatic, on odd shapes (n = 1, 3, 7, 127, 50257 with a small k), in row chunks with a remainder, batched,
// with bias, ReLU/GELU, residual (also in place), trans_a/trans_b; inside CUDA stream capture; the timed
// direct-vs-padded choice; a GPT-2 lm_head sized problem once; and the tied lm_head end to end through the
// builder (the Transpose read as trans_b) with CUDA graph replay.
#include <cuda_runtime.h>

#include <array>
#include <cmath>
#include <cstring>
#include <random>

#include "backends/cuda/lt_matmul.h"
#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "engine/engine_state.h"
#include "kiln/half.h"

namespace kiln {
namespace {

using cuda::LtActivation;
using cuda::LtMatmul;
using cuda::LtPadding;

struct Buffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t n) : bytes(n) { EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(n, 1)), cudaSuccess); }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void upload(const Tensor& t) {
    ASSERT_EQ(cudaMemcpy(p, t.raw(), t.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  }
};

struct Fixture {
  cuda::Resources res;
  Buffer ws{32u << 20};
  ir::Node node;
  std::vector<cuda::DeviceTensor> outs{1};
  Fixture() {
    EXPECT_EQ(cudaStreamCreate(&res.stream), cudaSuccess);
    EXPECT_EQ(cublasLtCreate(&res.cublaslt), CUBLAS_STATUS_SUCCESS);
    res.workspace = ws.p;
    res.workspace_bytes = 32u << 20;
    node.name = "layout";
    node.op_type = "MatMul";
  }
  ~Fixture() {
    res.kernel_state.clear();  // plans and the padded scratch before the handle
    cublasLtDestroy(res.cublaslt);
    cudaStreamDestroy(res.stream);
  }
  cuda::KernelContext ctx() { return cuda::KernelContext(node, 20, {}, {}, &outs, res); }
};

double val(const Tensor& t, int64_t i) {
  return t.get_as_double(i);
}

void store(Tensor& t, int64_t i, double v) {
  if (t.dtype() == DType::kF16)
    t.data<uint16_t>()[i] = float_to_half(static_cast<float>(v));
  else if (t.dtype() == DType::kBF16)
    t.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(v));
  else
    t.data<float>()[i] = static_cast<float>(v);
}

double activate(double x, LtActivation act) {
  if (act == LtActivation::kRelu) return x > 0 ? x : 0;
  if (act == LtActivation::kGeluTanh)
    return 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  return x;
}

// One problem's host data and its reference, element (b, i, j) of D computed on demand in double.
struct Problem {
  LtMatmul p;
  // a: batch x [m,k] ([k,m] when trans_a), b: batch_b x [k,n] ([n,k] when trans_b), c: batch x [m,n].
  Tensor a, b, c, bias;
  int64_t batch_b = 1;

  double ref(int64_t bi, int64_t i, int64_t j) const {
    double s = 0;
    const int64_t m = p.m, n = p.n, k = p.k;
    const int64_t ao = bi * m * k, bo = (batch_b == 1 ? 0 : bi) * k * n;
    for (int64_t q = 0; q < k; ++q) {
      const double av = val(a, ao + (p.trans_a ? q * m + i : i * k + q));
      const double bv = val(b, bo + (p.trans_b ? j * k + q : q * n + j));
      s += av * bv;
    }
    s *= p.alpha;
    if (p.beta != 0.f) s += p.beta * val(c, bi * m * n + i * n + j);
    if (p.bias) s += val(bias, j);
    return activate(s, p.act);
  }
};

Problem make_problem(DType dt, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                     bool shared_b, uint64_t seed) {
  Problem pr;
  pr.p.dtype = dt;
  pr.p.m = m, pr.p.n = n, pr.p.k = k;
  pr.p.trans_a = trans_a, pr.p.trans_b = trans_b;
  pr.p.batch = batch;
  pr.batch_b = shared_b ? 1 : batch;
  pr.p.stride_a = m * k;
  pr.p.stride_b = shared_b ? 0 : k * n;
  pr.p.stride_c = m * n;
  pr.a = gputest::random_tensor(dt, {batch * m * k}, seed);
  pr.b = gputest::random_tensor(dt, {pr.batch_b * k * n}, seed + 1);
  pr.c = gputest::random_tensor(dt, {batch * m * n}, seed + 2);
  pr.bias = gputest::random_tensor(dt, {n}, seed + 3);
  return pr;
}

gputest::Tolerance tol_for(DType dt, int64_t k) {
  // Products of values in [-1, 1) summed k times in f32, the result rounded once to the storage type.
  const double grow = std::sqrt(static_cast<double>(std::max<int64_t>(k, 1)));
  if (dt == DType::kF32) return {1e-4, 1e-4 * grow};
  if (dt == DType::kF16) return {4e-3, 2e-3 * grow};
  return {2e-2, 1e-2 * grow};
}

// Compares D (downloaded) with the reference at every element, or at a sample of rows and columns (the first
// and last columns always) when the problem is large.
void expect_matches(const Problem& pr, const Tensor& d, const std::string& what, bool sample = false) {
  const auto tol = tol_for(pr.p.dtype, pr.p.k);
  const int64_t m = pr.p.m, n = pr.p.n;
  int bad = 0;
  int64_t checked = 0;
  std::mt19937 rng(7);
  for (int64_t bi = 0; bi < pr.p.batch; ++bi)
    for (int64_t i = 0; i < m; ++i) {
      if (sample && i % 61 != 0 && i != m - 1) continue;
      for (int64_t j = 0; j < n; ++j) {
        if (sample && j > 8 && j < n - 9 && rng() % 97 != 0) continue;
        const double want = pr.ref(bi, i, j), got = val(d, bi * m * n + i * n + j);
        ++checked;
        if (!(std::fabs(got - want) <= tol.atol + tol.rtol * std::fabs(want)) && bad++ < 5)
          ADD_FAILURE() << what << " [" << bi << "," << i << "," << j << "] gpu " << got << " vs " << want;
      }
    }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << checked << " checked elements differ";
  EXPECT_GT(checked, 0) << what;
}

// Runs pr on the GPU (D pre-filled with C when in_place: c = null reads D) and downloads D.
Tensor run(Fixture& fx, const Problem& pr, bool in_place, std::string* tactic = nullptr) {
  const size_t es = dtype_size(pr.p.dtype);
  Buffer da(pr.a.nbytes()), db(pr.b.nbytes()), dc(pr.c.nbytes()), dbias(pr.bias.nbytes()),
      dd(pr.p.batch * pr.p.m * pr.p.n * es);
  da.upload(pr.a);
  db.upload(pr.b);
  dc.upload(pr.c);
  dbias.upload(pr.bias);
  // D starts as garbage (NaN bytes) so that any element the padded copy misses shows.
  EXPECT_EQ(cudaMemset(dd.p, 0xff, dd.bytes), cudaSuccess);
  if (in_place) EXPECT_EQ(cudaMemcpy(dd.p, pr.c.raw(), pr.c.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  LtMatmul p = pr.p;
  if (p.bias) p.bias = dbias.p;
  auto ctx = fx.ctx();
  bool applied = false;
  Status s = cuda::lt_matmul(ctx, p, da.p, db.p, in_place ? nullptr : dc.p, dd.p, &applied);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(cudaStreamSynchronize(fx.res.stream), cudaSuccess);
  Tensor d(pr.p.dtype, {pr.p.batch * pr.p.m * pr.p.n});
  EXPECT_EQ(cudaMemcpy(d.raw(), dd.p, d.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  if (!applied && p.act != LtActivation::kNone)  // the caller's duty: done here on the host
    for (int64_t i = 0; i < d.numel(); ++i) store(d, i, activate(val(d, i), p.act));
  if (tactic) *tactic = fx.res.tactic;
  return d;
}

const void* kBiasMarker = reinterpret_cast<const void*>(0x1);  // replaced by the device bias in run()

TEST(GpuMatmulLayout, ForcedPaddedOddNEveryDtypeEpilogueAndTranspose) {
  KILN_REQUIRE_GPU();
  Fixture fx;
  // (m, n, k): n never a multiple of 16 bytes in f16/bf16, and 1, 3, 7, 127, 50257 not in f32 either.
  const std::vector<std::array<int64_t, 3>> shapes = {{5, 1, 9},    {7, 3, 33},  {3, 7, 64},
                                                      {9, 127, 17}, {1, 129, 8}, {4, 50257, 16}};
  const LtActivation acts[] = {LtActivation::kNone, LtActivation::kRelu, LtActivation::kGeluTanh};
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16})
    for (size_t s = 0; s < shapes.size(); ++s) {
      const auto [m, n, k] = shapes[s];
      for (int variant = 0; variant < 4; ++variant) {
        seed += 8;
        Problem pr = make_problem(dt, 1, m, n, k, variant == 3, variant % 2 == 1, true, seed);
        pr.p.act = acts[(s + variant) % 3];
        if ((s + variant) % 2 == 0) pr.p.bias = kBiasMarker;
        if (variant >= 2) pr.p.beta = 1.f;
        pr.p.alpha = variant == 1 ? 0.5f : 1.f;
        pr.p.padding = LtPadding::kPadded;
        pr.p.max_chunk_rows = 2;  // several chunks and, for odd m, a one-row remainder
        const std::string what = fmt::format("{} m={} n={} k={} trans_a={} trans_b={} beta={} bias={} act={}",
                                             dtype_name(dt), m, n, k, pr.p.trans_a, pr.p.trans_b, pr.p.beta,
                                             pr.p.bias != nullptr, static_cast<int>(pr.p.act));
        std::string tactic;
        Tensor d = run(fx, pr, false, &tactic);
        expect_matches(pr, d, what);
        EXPECT_NE(tactic.find("padded"), std::string::npos) << what << ": " << tactic;
        // The direct way gives the same numbers (within rounding) and says so.
        pr.p.padding = LtPadding::kDirect;
        Tensor direct = run(fx, pr, false, &tactic);
        expect_matches(pr, direct, what + " direct");
        EXPECT_EQ(tactic.find("padded"), std::string::npos) << what << ": " << tactic;
      }
    }
}

TEST(GpuMatmulLayout, PaddedResidualInPlaceAndBatched) {
  KILN_REQUIRE_GPU();
  Fixture fx;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    // C is D (c = null): the chunk of D is read into the scratch before it is overwritten. Also with timed
    // plans (a fresh context each time): timing runs the candidates on the scratch, before C goes in.
    for (bool timed : {false, true}) {
      Fixture fresh;
      fresh.res.time_tactics = timed;
      Problem pr = make_problem(dt, 1, 11, 127, 32, false, true, true, 100);
      pr.p.beta = 1.f;
      pr.p.bias = kBiasMarker;
      pr.p.act = LtActivation::kRelu;
      pr.p.padding = LtPadding::kPadded;
      pr.p.max_chunk_rows = 4;
      expect_matches(pr, run(fresh, pr, true), std::string(dtype_name(dt)) + (timed ? " in place, timed" : " in place"));
    }
    // Strided batches: each matrix its own A, B and C; and a B shared by all (stride 0).
    for (bool shared : {false, true}) {
      Problem bp = make_problem(dt, 3, 7, 33, 24, false, !shared, shared, 110 + shared);
      bp.p.beta = 0.5f;
      bp.p.act = LtActivation::kGeluTanh;
      bp.p.padding = LtPadding::kPadded;
      bp.p.max_chunk_rows = 3;
      std::string tactic;
      expect_matches(bp, run(fx, bp, false, &tactic),
                     fmt::format("{} batched shared_b={}", dtype_name(dt), shared));
      // 3 matrices x 3 chunks x 2 column parts (n = 33: the aligned 32 and the last one).
      EXPECT_NE(tactic.find("18 calls"), std::string::npos) << tactic;
      EXPECT_NE(tactic.find("n split 32+1"), std::string::npos) << tactic;
    }
  }
}

TEST(GpuMatmulLayout, AlignedPitchAndSmallProblemsStayDirect) {
  KILN_REQUIRE_GPU();
  Fixture fx;
  // n = 64 in f16 is 128-byte rows: nothing to pad even when asked.
  Problem aligned = make_problem(DType::kF16, 1, 5, 64, 16, false, true, true, 200);
  aligned.p.padding = LtPadding::kPadded;
  std::string tactic;
  expect_matches(aligned, run(fx, aligned, false, &tactic), "aligned");
  EXPECT_EQ(tactic.find("padded"), std::string::npos) << tactic;
  // kAuto on a small misaligned problem: direct.
  Problem small = make_problem(DType::kF16, 1, 5, 127, 16, false, true, true, 210);
  expect_matches(small, run(fx, small, false, &tactic), "small");
  EXPECT_EQ(tactic.find("padded"), std::string::npos) << tactic;
}

// m·n·k >= 2^30 with odd n, B read transposed (its rows k long, aligned): kAuto pads by size, or times both
// ways.
TEST(GpuMatmulLayout, AutoPadsLargeOddNAndTimesBothWays) {
  KILN_REQUIRE_GPU();
  for (bool timed : {false, true}) {
    Fixture fx;
    fx.res.time_tactics = timed;
    for (DType dt : {DType::kF16, DType::kBF16, DType::kF32}) {
      Problem pr = make_problem(dt, 1, 64, 16411, 1024, false, true, true, 300);
      pr.p.bias = kBiasMarker;
      pr.p.beta = 1.f;
      const std::string what = fmt::format("{} timed={}", dtype_name(dt), timed);
      std::string tactic;
      expect_matches(pr, run(fx, pr, false, &tactic), what, true);
      if (timed) {
        EXPECT_NE(tactic.find("timed: direct"), std::string::npos) << what << ": " << tactic;
      } else {
        EXPECT_NE(tactic.find("padded"), std::string::npos) << what << ": " << tactic;
        EXPECT_NE(tactic.find("by size"), std::string::npos) << what << ": " << tactic;
      }
      std::printf("[ info ] %s: %s\n", what.c_str(), tactic.c_str());
      // The second run reuses the choice: same tactic string.
      std::string again;
      expect_matches(pr, run(fx, pr, false, &again), what + " again", true);
      EXPECT_EQ(again, tactic);
    }
  }
}

// A padded plan made on an uncaptured run is recorded into a CUDA graph (no allocation, no timing inside),
// and the graph replays with new input values. A shape first seen inside capture runs direct.
TEST(GpuMatmulLayout, PaddedInsideStreamCapture) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF16, DType::kF32}) {
    Fixture fx;
    fx.res.time_tactics = true;  // must not time (or allocate) while capturing
    Problem pr = make_problem(dt, 1, 37, 1031, 64, false, true, true, 400);
    pr.p.bias = kBiasMarker;
    pr.p.beta = 1.f;
    pr.p.act = LtActivation::kRelu;
    pr.p.padding = LtPadding::kPadded;
    pr.p.max_chunk_rows = 16;
    const size_t es = dtype_size(dt);
    Buffer da(pr.a.nbytes()), db(pr.b.nbytes()), dc(pr.c.nbytes()), dbias(pr.bias.nbytes()),
        dd(pr.p.m * pr.p.n * es);
    da.upload(pr.a);
    db.upload(pr.b);
    dc.upload(pr.c);
    dbias.upload(pr.bias);
    LtMatmul p = pr.p;
    p.bias = dbias.p;
    auto ctx = fx.ctx();
    bool applied = false;
    ASSERT_TRUE(cuda::lt_matmul(ctx, p, da.p, db.p, dc.p, dd.p, &applied).ok());  // uncaptured first run
    ASSERT_EQ(cudaStreamSynchronize(fx.res.stream), cudaSuccess);
    EXPECT_TRUE(applied);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(fx.res.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    Status s = cuda::lt_matmul(ctx, p, da.p, db.p, dc.p, dd.p, &applied);
    ASSERT_EQ(cudaStreamEndCapture(fx.res.stream, &graph), cudaSuccess);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_NE(fx.res.tactic.find("padded"), std::string::npos) << fx.res.tactic;
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    // New A and C values, D cleared to garbage: the replay must compute from the buffers.
    pr.a = gputest::random_tensor(dt, {pr.p.m * pr.p.k}, 410);
    pr.c = gputest::random_tensor(dt, {pr.p.m * pr.p.n}, 411);
    da.upload(pr.a);
    dc.upload(pr.c);
    ASSERT_EQ(cudaMemset(dd.p, 0xff, dd.bytes), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, fx.res.stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(fx.res.stream), cudaSuccess);
    Tensor d(dt, {pr.p.m * pr.p.n});
    ASSERT_EQ(cudaMemcpy(d.raw(), dd.p, d.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    expect_matches(pr, d, std::string(dtype_name(dt)) + " replayed");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);

    // Another shape, first seen inside capture: no scratch can be allocated there, so it runs direct.
    Problem fresh = make_problem(dt, 1, 5, 517, 32, false, true, true, 420);
    fresh.p.padding = LtPadding::kPadded;
    Buffer fa(fresh.a.nbytes()), fb(fresh.b.nbytes()), fd(fresh.p.m * fresh.p.n * es);
    fa.upload(fresh.a);
    fb.upload(fresh.b);
    ASSERT_EQ(cudaStreamBeginCapture(fx.res.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    s = cuda::lt_matmul(ctx, fresh.p, fa.p, fb.p, nullptr, fd.p, nullptr);
    ASSERT_EQ(cudaStreamEndCapture(fx.res.stream, &graph), cudaSuccess);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(fx.res.tactic.find("padded"), std::string::npos) << fx.res.tactic;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, fx.res.stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(fx.res.stream), cudaSuccess);
    Tensor fdh(dt, {fresh.p.m * fresh.p.n});
    ASSERT_EQ(cudaMemcpy(fdh.raw(), fd.p, fdh.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    expect_matches(fresh, fdh, std::string(dtype_name(dt)) + " first seen in capture");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
}

// GPT-2's lm_head at batch 4 x 512 (m = 2048, n = 50257, k = 768, f16, B = wte read transposed), once: padded
// (chosen by size) against direct on the GPU elementwise, and both against a sampled host reference. Prints
// the two times for the record.
TEST(GpuMatmulLayout, LmHeadSizedProblemOnce) {
  KILN_REQUIRE_GPU();
  Fixture fx;
  const DType dt = DType::kF16;
  Problem pr = make_problem(dt, 1, 2048, 50257, 768, false, true, true, 500);
  const size_t es = dtype_size(dt);
  Buffer da(pr.a.nbytes()), db(pr.b.nbytes()), dd(pr.p.m * pr.p.n * es), dd2(pr.p.m * pr.p.n * es);
  da.upload(pr.a);
  db.upload(pr.b);
  auto ctx = fx.ctx();
  float ms[3] = {0, 0, 0};
  std::string tactics[3];
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int way = 0; way < 3; ++way) {  // auto, direct, auto with every candidate timed
    LtMatmul p = pr.p;
    p.padding = way == 1 ? LtPadding::kDirect : LtPadding::kAuto;
    fx.res.time_tactics = way == 2;
    void* d = way == 1 ? dd2.p : dd.p;
    ASSERT_TRUE(cuda::lt_matmul(ctx, p, da.p, db.p, nullptr, d, nullptr).ok());  // plan, scratch
    cudaEventRecord(start, fx.res.stream);
    for (int r = 0; r < 5; ++r) ASSERT_TRUE(cuda::lt_matmul(ctx, p, da.p, db.p, nullptr, d, nullptr).ok());
    cudaEventRecord(stop, fx.res.stream);
    ASSERT_EQ(cudaEventSynchronize(stop), cudaSuccess);
    cudaEventElapsedTime(&ms[way], start, stop);
    tactics[way] = fx.res.tactic;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  const double tflop = 2.0 * pr.p.m * pr.p.n * pr.p.k / 1e12;
  std::printf(
      "[ info ] lm_head m=2048 n=50257 k=768 f16: auto %.3f ms (%.0f TFLOPS) [%s]; direct %.3f ms (%.0f "
      "TFLOPS) [%s]; timed %.3f ms (%.0f TFLOPS) [%s]\n",
      ms[0] / 5, tflop / (ms[0] / 5e3), tactics[0].c_str(), ms[1] / 5, tflop / (ms[1] / 5e3),
      tactics[1].c_str(), ms[2] / 5, tflop / (ms[2] / 5e3), tactics[2].c_str());
  EXPECT_NE(tactics[0].find("padded"), std::string::npos) << tactics[0];
  EXPECT_NE(tactics[0].find("n split 50256+1"), std::string::npos) << tactics[0];
  // The split lets the aligned part run on the Hopper kernels: several times faster, not a close call.
  EXPECT_LT(ms[0], 0.5f * ms[1]) << "padded " << tactics[0] << " vs direct " << tactics[1];
  Tensor padded(dt, {pr.p.m * pr.p.n}), direct(dt, {pr.p.m * pr.p.n});
  ASSERT_EQ(cudaMemcpy(padded.raw(), dd.p, padded.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(direct.raw(), dd2.p, direct.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  const auto tol = tol_for(dt, pr.p.k);
  int64_t bad = 0;
  for (int64_t i = 0; i < padded.numel(); ++i) {
    const double a = val(padded, i), b = val(direct, i);
    if (!(std::fabs(a - b) <= tol.atol + tol.rtol * std::fabs(b)) && bad++ < 5)
      ADD_FAILURE() << "[" << i / pr.p.n << "," << i % pr.p.n << "] padded " << a << " vs direct " << b;
  }
  EXPECT_EQ(bad, 0);
  expect_matches(pr, padded, "lm_head padded", true);
}

// The tied lm_head through the builder: Transpose(W) feeding a MatMul, W also feeding a Gather. The pass
// makes it a FusedMatMul reading W with trans_b; at m·n·k >= 2^30 with odd n the GPU pads D. Runs thrice
// (traced, captured, replayed) with new inputs each time, against the CPU engine; f32 and an f16 engine.
TEST(GpuMatmulLayout, TiedLmHeadEngineMatchesCpuWithGraphReplay) {
  KILN_REQUIRE_GPU();
  const int64_t n = 4099, k = 1024;  // W of 4.2M elements: too big for fold_constants to copy transposed
  testing::ModelBuilder b(20);
  b.input("x", DType::kF32, {"4", "64", std::to_string(k)})
      .input("ids", DType::kI64, {"5"})
      .initializer("wte", testing::random_f32({n, k}, 600))
      .node("Gather", {"wte", "ids"}, {"emb"})
      .node("Transpose", {"wte"}, {"wte_t"})
      .attr("perm", std::vector<int64_t>{1, 0})
      .node("MatMul", {"x", "wte_t"}, {"logits"}, "lm_head")
      .output("logits")
      .output("emb");
  BuildConfig cpu_cfg;
  cpu_cfg.backend = BackendKind::kCpu;
  auto cpu = Builder::build_from_bytes(b.bytes(), cpu_cfg);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  for (Precision prec : {Precision::kF32, Precision::kF16}) {
    SCOPED_TRACE(precision_name(prec));
    BuildConfig cfg;
    cfg.backend = BackendKind::kCuda;
    cfg.precision = prec;
    auto gpu = Builder::build_from_bytes(b.bytes(), cfg);
    ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
    auto ctx = gpu->create_context();
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    auto cctx = cpu->create_context();
    ASSERT_TRUE(cctx.ok());
    for (int run = 0; run < 3; ++run) {
      std::map<std::string, Tensor> in = {
          {"x", testing::random_f32({4, 64, k}, 610 + run)},
          {"ids", Tensor::from_vector<int64_t>(DType::kI64, {5}, {0, 4098, 7, run, 2})}};
      auto got = ctx->infer(in);
      ASSERT_TRUE(got.ok()) << got.status().to_string();
      auto want = cctx->infer(in);
      ASSERT_TRUE(want.ok()) << want.status().to_string();
      for (const char* name : {"logits", "emb"}) {
        const Tensor& g = got->at(name);
        const Tensor& w = want->at(name);
        ASSERT_EQ(g.dims(), w.dims()) << name;
        double scale = 0, err = 0;
        for (int64_t i = 0; i < w.numel(); ++i) {
          scale = std::max(scale, std::fabs(w.get_as_double(i)));
          err = std::max(err, std::fabs(g.get_as_double(i) - w.get_as_double(i)));
        }
        const double rel = prec == Precision::kF32 ? 1e-4 : 1e-2;
        EXPECT_LE(err, rel * (scale + 1e-30)) << name << " run " << run << ": max abs error " << err;
      }
      if (run == 2) EXPECT_TRUE(ctx->last_run_info().cuda_graph) << ctx->last_run_info().not_captured;
    }
    // The engine's graph: no Transpose left, the lm_head a FusedMatMul reading wte itself with trans_b.
    const ir::Graph& g = *gpu->state()->graph;
    int fused = 0;
    for (const auto& node : g.nodes) {
      EXPECT_NE(node.op_type, "Transpose") << node.name;
      if (node.op_type != "FusedMatMul") continue;
      ++fused;
      EXPECT_EQ(node.attr_int("trans_b", 0), 1);
      ASSERT_GE(node.inputs.size(), 2u);
      EXPECT_TRUE(g.initializers.count(node.inputs[1])) << node.inputs[1];
    }
    EXPECT_EQ(fused, 1);
  }
}

}  // namespace
}  // namespace kiln
