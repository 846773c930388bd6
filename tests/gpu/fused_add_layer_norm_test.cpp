// kiln::FusedAddLayerNorm on the GPU against the CPU reference (which runs Add, then LayerNormalization): row
// lengths across the warp, cached-block and three-pass kernels, 1/7/300 rows, f32/f16/bf16, with and without
// the S output and beta; scalar and mixed-dtype parameters, large offsets, empty tensors; the fused node
// inside a built f16 engine; and (disabled, for the record) its time at BERT-base b32 against the layouts it
// replaces.
#include <cuda_runtime.h>

#include <cstdio>

#include "gpu/norm_reduce_test_util.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

using gputest::sdims;
using testing::ModelBuilder;

constexpr DType kFloats[] = {DType::kF32, DType::kF16, DType::kBF16};

struct Case {
  int64_t rows = 1, d = 1;
  bool beta = true, with_s = true;
  DType param_dt = DType::kUndefined;  // default: X's dtype
  bool scalar_gamma = false;
  double lo = -1.0, hi = 1.0;  // X's values (R is in [-1, 1))
};

void check_add_norm(DType dt, const Case& c, uint64_t seed) {
  SCOPED_TRACE(std::string(gputest::dname(dt)) + " rows=" + std::to_string(c.rows) +
               " d=" + std::to_string(c.d) + (c.beta ? " beta" : "") + (c.with_s ? " S" : "") +
               (c.param_dt != DType::kUndefined ? " params " + gputest::dname(c.param_dt) : "") +
               (c.scalar_gamma ? " scalar gamma" : ""));
  const DType pdt = c.param_dt == DType::kUndefined ? dt : c.param_dt;
  const std::vector<int64_t> x = {c.rows, c.d};
  const std::vector<int64_t> p = {c.scalar_gamma ? 1 : c.d};
  ModelBuilder b(20);
  b.input("x", dt, sdims(x)).input("r", dt, sdims(x)).input("gamma", pdt, sdims(p));
  std::map<std::string, Tensor> in = {{"x", gputest::uniform_tensor(dt, x, seed, c.lo, c.hi)},
                                      {"r", gputest::random_tensor(dt, x, seed + 1)},
                                      {"gamma", gputest::uniform_tensor(pdt, p, seed + 2, 0.5, 1.5)}};
  std::vector<std::string> ins = {"x", "r", "gamma"};
  if (c.beta) {
    b.input("beta", pdt, sdims(p));
    in["beta"] = gputest::random_tensor(pdt, p, seed + 3);
    ins.push_back("beta");
  }
  std::vector<std::string> outs = {"y"};
  if (c.with_s) outs.push_back("s");
  b.node("FusedAddLayerNorm", ins, outs, "faln").domain("kiln").attr("epsilon", 1e-5f);
  for (const auto& o : outs) b.output(o);
  // S is the same rounded sum on both sides; Y follows the LayerNormalization tolerances.
  gputest::expect_both(b, in);
}

TEST(GpuFusedAddLayerNorm, RowLengthsRowCountsDtypesAndOutputs) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : kFloats)
    for (int64_t d : {1, 3, 7, 127, 768, 1000, 4096})
      for (int64_t rows : {1, 7, 300})
        for (bool beta : {true, false})
          for (bool with_s : {true, false}) {
            Case c;
            c.rows = rows;
            c.d = d;
            c.beta = beta;
            c.with_s = with_s;
            check_add_norm(dt, c, seed += 4);
          }
}

TEST(GpuFusedAddLayerNorm, LongRowsLeaveRegisters) {
  KILN_REQUIRE_GPU();
  // Beyond 16 values a thread of a 1024-thread block: three passes over X and R (vectorized at 20000, one
  // element at a time at 20001), and the cached block kernel just below.
  for (DType dt : kFloats)
    for (int64_t d : {1025, 16384, 20000, 20001}) {
      Case c;
      c.rows = 3;
      c.d = d;
      check_add_norm(dt, c, 500 + d);
      c.with_s = false;
      c.beta = false;
      check_add_norm(dt, c, 600 + d);
    }
}

TEST(GpuFusedAddLayerNorm, ScalarAndMixedDtypeParameters) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats)
    for (DType pdt : kFloats)
      for (int64_t d : {7, 768, 4097}) {
        Case c;
        c.rows = 5;
        c.d = d;
        c.param_dt = pdt;
        check_add_norm(dt, c, 700 + d);
        c.scalar_gamma = true;
        check_add_norm(dt, c, 800 + d);
      }
}

TEST(GpuFusedAddLayerNorm, LargeOffsetsKeepPrecision) {
  KILN_REQUIRE_GPU();
  // Rows around 300 with a spread of a few units: the f32 statistics work around the row's first sum.
  for (DType dt : kFloats)
    for (int64_t d : {31, 768, 4097, 20000}) {
      Case c;
      c.rows = 3;
      c.d = d;
      c.lo = 290.0;
      c.hi = 310.0;
      check_add_norm(dt, c, 900 + d);
    }
}

TEST(GpuFusedAddLayerNorm, EmptyTensors) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats)
    for (std::vector<int64_t> x : {std::vector<int64_t>{0, 768}, std::vector<int64_t>{4, 0}}) {
      SCOPED_TRACE(gputest::dname(dt) + dims_to_string(x));
      const std::vector<int64_t> p = {x[1]};
      ModelBuilder b(20);
      b.input("x", dt, sdims(x))
          .input("r", dt, sdims(x))
          .input("g", dt, sdims(p))
          .node("FusedAddLayerNorm", {"x", "r", "g"}, {"y", "s"})
          .domain("kiln")
          .output("y")
          .output("s");
      gputest::expect_on_device(b, {{"x", Tensor(dt, x)}, {"r", Tensor(dt, x)}, {"g", Tensor(dt, p)}}, 0);
    }
}

TEST(GpuFusedAddLayerNorm, PreNormBlockInAnF16Engine) {
  KILN_REQUIRE_GPU();
  // ViT's pattern (a residual through a Transpose, the sum read again after the norm), built as an f16 CUDA
  // engine from an f32 model: the pass makes a FusedAddLayerNorm with S; the engine matches the CPU engine.
  ModelBuilder b(20);
  b.input("t", DType::kF32, {"197", "4", "768"})
      .input("h", DType::kF32, {"4", "197", "768"})
      .initializer("gamma", gputest::uniform_tensor(DType::kF32, {768}, 3, 0.5, 1.5))
      .initializer("beta", gputest::random_tensor(DType::kF32, {768}, 4))
      .node("Transpose", {"t"}, {"tt"})
      .attr("perm", std::vector<int64_t>{1, 0, 2})
      .node("Add", {"tt", "h"}, {"sum"})
      .node("LayerNormalization", {"sum", "gamma", "beta"}, {"y"})
      .attr("epsilon", 1e-6f)
      .node("Add", {"sum", "y"}, {"out"})
      .output("out");
  std::map<std::string, Tensor> in = {{"t", gputest::random_tensor(DType::kF32, {197, 4, 768}, 1)},
                                      {"h", gputest::random_tensor(DType::kF32, {4, 197, 768}, 2)}};
  BuildConfig cpu_cfg;
  cpu_cfg.backend = BackendKind::kCpu;
  auto cpu = Builder::build_from_bytes(b.bytes(), cpu_cfg);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  BuildConfig gpu_cfg;
  gpu_cfg.backend = BackendKind::kCuda;
  gpu_cfg.precision = Precision::kF16;
  auto gpu = Builder::build_from_bytes(b.bytes(), gpu_cfg);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  auto want = cpu->create_context()->infer(in);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  auto ctx = gpu->create_context();
  ASSERT_TRUE(ctx.ok());
  for (int run = 0; run < 2; ++run) {  // traced, then replayed as a CUDA graph
    auto got = ctx->infer(in);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_EQ(ctx->last_run_info().fallback_nodes, 0);
    gputest::compare_outputs(*want, *got, gputest::Tolerance{1e-2, 1e-2});
  }
}

// ---- Timing (disabled: it checks nothing) -----------------------------------------------------------------

// The average of `iters` enqueues of a CUDA f16 engine (CUDA graphs on), in microseconds: the engine's
// GPU time, since enqueue returns before the GPU finishes and the host keeps ahead.
double time_engine(const ModelBuilder& b, const std::map<std::string, std::vector<int64_t>>& inputs,
                   int iters) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  if (!e.ok()) return 0;
  auto ctx = e->create_context();
  EXPECT_TRUE(ctx.ok());
  if (!ctx.ok()) return 0;
  std::vector<void*> bufs;
  auto bind = [&](const std::string& name, DType dt, const std::vector<int64_t>& dims, uint64_t seed) {
    Tensor t = gputest::random_tensor(dt, dims, seed);
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(t.nbytes(), 1)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, t.raw(), t.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    bufs.push_back(p);
    EXPECT_TRUE(ctx->set_tensor_address(name, p, t.nbytes()).ok()) << name;
  };
  uint64_t seed = 1;
  for (const auto& [name, dims] : inputs) {
    EXPECT_TRUE(ctx->set_input_shape(name, dims).ok()) << name;
    bind(name, DType::kF16, dims, seed++);
  }
  for (const auto& o : e->outputs()) {
    auto dims = ctx->output_shape(o.name);
    EXPECT_TRUE(dims.ok()) << o.name;
    if (dims.ok()) bind(o.name, o.dtype, *dims, seed++);
  }
  cudaStream_t s;
  cudaStreamCreate(&s);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(ctx->enqueue(s).ok());
  cudaEvent_t a, z;
  cudaEventCreate(&a);
  cudaEventCreate(&z);
  cudaEventRecord(a, s);
  for (int i = 0; i < iters; ++i)
    if (!ctx->enqueue(s).ok()) {
      ADD_FAILURE() << "enqueue failed";
      break;
    }
  cudaEventRecord(z, s);
  cudaEventSynchronize(z);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, z);
  EXPECT_TRUE(ctx->last_run_info().cuda_graph) << ctx->last_run_info().not_captured;
  cudaEventDestroy(a);
  cudaEventDestroy(z);
  cudaStreamDestroy(s);
  for (void* p : bufs) cudaFree(p);
  return ms * 1e3 / iters;
}

// BERT-base at batch 32 x 128 tokens, f16: [4096, 768] rows.
//  - the norm alone: LayerNormalization vs FusedAddLayerNorm (without and with S);
//  - the post-norm block end both ways: FusedMatMul(bias + residual) -> LayerNormalization (what the pipeline
//    makes, fuse_matmul_epilogue first) vs FusedMatMul(bias) -> FusedAddLayerNorm (the pass run before it).
// Run: kiln_gpu_tests --gtest_also_run_disabled_tests --gtest_filter='GpuFusedAddLayerNormPerf.*'
TEST(GpuFusedAddLayerNormPerf, DISABLED_BertBaseB32F16) {
  KILN_REQUIRE_GPU();
  const std::vector<int64_t> x = {4096, 768};
  const DType h = DType::kF16;
  // kind: "ln" (LayerNormalization of x alone), "fused" (FusedAddLayerNorm, Y only), "fused_s" (Y and S).
  auto norm_model = [&](const std::string& kind) {
    ModelBuilder b(20);
    b.input("x", h, sdims(x))
        .initializer("g", gputest::uniform_tensor(h, {768}, 3, 0.5, 1.5))
        .initializer("b", gputest::random_tensor(h, {768}, 4));
    if (kind == "ln") {
      b.node("LayerNormalization", {"x", "g", "b"}, {"y"}).output("y");
      return b;
    }
    std::vector<std::string> outs = {"y"};
    if (kind == "fused_s") outs.push_back("s");
    b.input("r", h, sdims(x)).node("FusedAddLayerNorm", {"x", "r", "g", "b"}, outs).domain("kiln");
    for (const auto& o : outs) b.output(o);
    return b;
  };
  const std::map<std::string, std::vector<int64_t>> xr = {{"x", x}, {"r", x}};
  std::printf("PERF LayerNormalization f16 [4096,768]            %8.2f us\n",
              time_engine(norm_model("ln"), {{"x", x}}, 500));
  std::printf("PERF FusedAddLayerNorm f16 [4096,768], Y only      %8.2f us\n",
              time_engine(norm_model("fused"), xr, 500));
  std::printf("PERF FusedAddLayerNorm f16 [4096,768], Y and S     %8.2f us\n",
              time_engine(norm_model("fused_s"), xr, 500));
  for (int64_t k : {768, 3072}) {
    auto block = [&](bool residual_in_gemm) {
      ModelBuilder b(20);
      b.input("a", h, {"4096", std::to_string(k)})
          .input("res", h, sdims(x))
          .initializer("w", gputest::random_tensor(h, {k, 768}, 5))
          .initializer("bias", gputest::random_tensor(h, {768}, 6))
          .initializer("g", gputest::uniform_tensor(h, {768}, 3, 0.5, 1.5))
          .initializer("b", gputest::random_tensor(h, {768}, 4));
      if (residual_in_gemm) {
        b.node("FusedMatMul", {"a", "w", "bias", "res"}, {"sum"})
            .domain("kiln")
            .node("LayerNormalization", {"sum", "g", "b"}, {"y"})
            .output("y");
      } else {
        b.node("FusedMatMul", {"a", "w", "bias"}, {"mm"})
            .domain("kiln")
            .node("FusedAddLayerNorm", {"mm", "res", "g", "b"}, {"y"})
            .domain("kiln")
            .output("y");
      }
      return b;
    };
    const std::map<std::string, std::vector<int64_t>> in = {{"a", {4096, k}}, {"res", x}};
    std::printf("PERF K=%-5lld FusedMatMul(bias+residual) -> LayerNorm   %8.2f us\n",
                static_cast<long long>(k), time_engine(block(true), in, 200));
    std::printf("PERF K=%-5lld FusedMatMul(bias) -> FusedAddLayerNorm    %8.2f us\n",
                static_cast<long long>(k), time_engine(block(false), in, 200));
  }
}

}  // namespace
}  // namespace kiln
