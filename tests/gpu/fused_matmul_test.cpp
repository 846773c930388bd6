// kiln::FusedMatMul on the GPU (cuBLASLt with bias/ReLU/GELU epilogues, the residual as C) against the CPU
// reference on odd shapes, every activation, with and without bias and residual, f32/f16/bf16; the cuBLASLt
// plan cache and timed tactic choice through lt_matmul directly; and the fused transformer skeletons end to
// end.
#include <cuda_runtime.h>

#include <array>
#include <cstring>

#include "backends/cuda/lt_matmul.h"
#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

std::vector<std::string> str_dims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

std::optional<gputest::Tolerance> tolerance(DType dt) {
  // Sums of up to ~129 products; erf-GELU rounds once more (after the GEMM) on f16/bf16.
  if (dt == DType::kF32) return gputest::Tolerance{1e-4, 1e-4};
  if (dt == DType::kF16) return gputest::Tolerance{5e-3, 5e-3};
  return gputest::Tolerance{2e-2, 2e-2};
}

// FusedMatMul(a [a_dims], W [k,n] or [n,k] as a constant weight, bias [n], residual [y dims]).
void check_fused(DType dt, std::vector<int64_t> a_dims, int64_t n, bool trans_b, bool bias, bool residual,
                 const std::string& act, float alpha, uint64_t seed) {
  SCOPED_TRACE(fmt::format("{} A{} N={} trans_b={} bias={} residual={} act={} alpha={}", dtype_name(dt),
                           dims_to_string(a_dims), n, trans_b, bias, residual, act, alpha));
  const int64_t k = a_dims.back();
  std::vector<int64_t> w_dims = trans_b ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n};
  std::vector<int64_t> y_dims(a_dims.begin(), a_dims.end() - 1);
  y_dims.push_back(n);
  ModelBuilder b(20);
  std::map<std::string, Tensor> inputs = {{"a", gputest::random_tensor(dt, a_dims, seed)}};
  b.input("a", dt, str_dims(a_dims)).initializer("w", gputest::random_tensor(dt, w_dims, seed + 1));
  std::vector<std::string> ins = {"a", "w", "", ""};
  if (bias) {
    b.initializer("bias", gputest::random_tensor(dt, {n}, seed + 2));
    ins[2] = "bias";
  }
  if (residual) {
    b.input("r", dt, str_dims(y_dims));
    inputs["r"] = gputest::random_tensor(dt, y_dims, seed + 3);
    ins[3] = "r";
  }
  while (ins.back().empty()) ins.pop_back();
  b.node("FusedMatMul", ins, {"y"}, "fm")
      .domain("kiln")
      .attr("activation", act)
      .attr("trans_b", int64_t{trans_b})
      .attr("alpha", alpha)
      .output("y");
  gputest::expect_gpu_matches_cpu(b, inputs, 1, tolerance(dt));
}

TEST(GpuFusedMatMul, OddShapesEveryActivationAndEpilogue) {
  KILN_REQUIRE_GPU();
  // (M, N, K) from {1, 3, 7, 127, 129}: tiles never divide them evenly.
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 1, 1},     {3, 7, 127},   {7, 129, 3},
                                                      {127, 3, 129}, {129, 127, 7}, {1, 129, 129}};
  // Every dtype x activation meets every shape and, across the shapes, every bias/residual combination.
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16})
    for (int a = 0; a < 4; ++a) {
      const char* act = std::array<const char*, 4>{"none", "relu", "gelu_erf", "gelu_tanh"}[a];
      for (size_t s = 0; s < shapes.size(); ++s) {
        const auto [m, n, k] = shapes[s];
        const size_t epi = (s + a) % 4;  // bit 0: bias, bit 1: residual
        seed += 4;
        check_fused(dt, {m, k}, n, s % 2 == 1, (epi & 1) != 0, (epi & 2) != 0, act, 1.f, seed);
      }
    }
}

TEST(GpuFusedMatMul, BatchedAFoldsIntoMWithTransposedWeightAndAlpha) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    check_fused(dt, {2, 3, 7}, 5, false, true, true, "gelu_erf", 1.f, 100);
    check_fused(dt, {2, 9, 64}, 129, true, true, true, "gelu_tanh", 0.5f, 110);
    check_fused(dt, {4, 1, 127}, 3, true, false, true, "relu", 2.f, 120);
    check_fused(dt, {3, 5, 7, 33}, 17, false, true, false, "none", 1.f, 130);
  }
}

TEST(GpuFusedMatMul, TransformerSizes) {
  KILN_REQUIRE_GPU();
  // BERT/ViT/GPT-2 FFN and projection shapes at a short sequence.
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    check_fused(dt, {2, 9, 768}, 3072, false, true, false, "gelu_erf", 1.f, 200);
    check_fused(dt, {2, 9, 3072}, 768, false, true, true, "none", 1.f, 210);
    check_fused(dt, {18, 768}, 3072, false, false, false, "gelu_tanh", 1.f, 220);
  }
}

TEST(GpuFusedMatMul, EmptyAndZeroK) {
  KILN_REQUIRE_GPU();
  check_fused(DType::kF32, {0, 4}, 3, false, true, true, "relu", 1.f, 300);  // M = 0: empty output
  // K = 0: A·B is all zeros, Y = act(bias + residual).
  for (const char* act : {"none", "relu", "gelu_erf", "gelu_tanh"})
    check_fused(DType::kF32, {3, 0}, 5, false, true, true, act, 1.f, 310);
  check_fused(DType::kF16, {2, 0}, 4, true, true, false, "gelu_erf", 1.f, 320);
}

// --- lt_matmul directly: plan cache, timed tactics, misaligned pointers
// ------------------------------------------

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(bytes, 1)), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(p); }
};

struct LtFixture {
  cuda::Resources res;
  DeviceBuffer ws{32u << 20};
  LtFixture() {
    EXPECT_EQ(cudaStreamCreate(&res.stream), cudaSuccess);
    EXPECT_EQ(cublasLtCreate(&res.cublaslt), CUBLAS_STATUS_SUCCESS);
    res.workspace = ws.p;
    res.workspace_bytes = 32u << 20;
  }
  ~LtFixture() {
    res.kernel_state.clear();  // plans before the handle
    cublasLtDestroy(res.cublaslt);
    cudaStreamDestroy(res.stream);
  }
};

float value_of(const Tensor& t, int64_t i) {
  return static_cast<float>(t.get_as_double(i));
}

// act(alpha*A·B + R + bias) in double from the stored (already rounded) values; a [m,k], w [k,n].
std::vector<double> reference(const Tensor& a, const Tensor& w, const Tensor& bias, const Tensor& r,
                              int64_t m, int64_t n, int64_t k, int64_t a_offset, bool relu) {
  std::vector<double> y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += value_of(a, a_offset + i * k + p) * value_of(w, p * n + j);
      s += value_of(bias, j) + value_of(r, i * n + j);
      y[i * n + j] = relu ? std::max(0.0, s) : s;
    }
  return y;
}

void run_direct(LtFixture& fx, DType dt, int64_t m, int64_t n, int64_t k, int64_t a_offset, uint64_t seed) {
  SCOPED_TRACE(fmt::format("{} m={} n={} k={} A offset {} elements", dtype_name(dt), m, n, k, a_offset));
  const size_t es = dtype_size(dt);
  Tensor a = gputest::random_tensor(dt, {m * k + a_offset}, seed),
         w = gputest::random_tensor(dt, {k, n}, seed + 1);
  Tensor bias = gputest::random_tensor(dt, {n}, seed + 2), r = gputest::random_tensor(dt, {m, n}, seed + 3);
  DeviceBuffer da(a.nbytes()), dw(w.nbytes()), db(bias.nbytes()), dr(r.nbytes()), dy(m * n * es);
  ASSERT_EQ(cudaMemcpy(da.p, a.raw(), a.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dw.p, w.raw(), w.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(db.p, bias.raw(), bias.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dr.p, r.raw(), r.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  ir::Node node;
  node.name = "direct";
  node.op_type = "FusedMatMul";
  std::vector<cuda::DeviceTensor> outs(1);
  cuda::KernelContext ctx(node, 20, {}, {}, &outs, fx.res);
  cuda::LtMatmul p;
  p.dtype = dt;
  p.m = m, p.n = n, p.k = k;
  p.bias = db.p;
  p.beta = 1.f;
  p.act = cuda::LtActivation::kRelu;
  const void* a_ptr = static_cast<const char*>(da.p) + a_offset * es;
  Tensor first(dt, {m, n}), second(dt, {m, n});
  for (Tensor* out : {&first, &second}) {
    bool applied = false;
    Status s = cuda::lt_matmul(ctx, p, a_ptr, dw.p, dr.p, dy.p, &applied);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_EQ(cudaStreamSynchronize(fx.res.stream), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(out->raw(), dy.p, out->nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    if (!applied)  // no ReLU epilogue for this shape: the caller's job, done here on the host
      for (int64_t i = 0; i < out->numel(); ++i)
        if (out->get_as_double(i) < 0) std::memset(static_cast<char*>(out->raw()) + i * es, 0, es);
  }
  // The second run reuses the cached plan: same algorithm, same bits.
  EXPECT_EQ(std::memcmp(first.raw(), second.raw(), first.nbytes()), 0);
  EXPECT_EQ(fx.res.kernel_state.count("cublaslt"), 1u);
  EXPECT_NE(fx.res.tactic.find("cublasLt"), std::string::npos) << fx.res.tactic;
  if (fx.res.time_tactics) EXPECT_NE(fx.res.tactic.find("timed"), std::string::npos) << fx.res.tactic;
  const auto want = reference(a, w, bias, r, m, n, k, a_offset, true);
  const gputest::Tolerance tol = *tolerance(dt);
  int bad = 0;
  for (int64_t i = 0; i < m * n; ++i) {
    const double got = first.get_as_double(i);
    if (!(std::fabs(got - want[i]) <= tol.atol + tol.rtol * std::fabs(want[i])) && bad++ < 5)
      ADD_FAILURE() << "[" << i << "] gpu " << got << " vs " << want[i];
  }
  EXPECT_EQ(bad, 0);
}

TEST(GpuFusedMatMul, LtPlanCacheHeuristicAndTimedTactics) {
  KILN_REQUIRE_GPU();
  for (bool timed : {false, true}) {
    LtFixture fx;
    fx.res.time_tactics = timed;
    for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
      run_direct(fx, dt, 37, 129, 64, 0, 400);
      run_direct(fx, dt, 128, 768, 768, 0, 410);
    }
  }
}

TEST(GpuFusedMatMul, LtMisalignedOperand) {
  KILN_REQUIRE_GPU();
  // A one element into its buffer: 2-byte (f16/bf16) or 4-byte (f32) alignment instead of 256.
  LtFixture fx;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) run_direct(fx, dt, 7, 33, 17, 1, 500);
}

// --- the fused transformer skeletons end to end
// --------------------------------------------------------------------

TEST(GpuFusedMatMul, SkeletonsMatchTheCpuEngine) {
  KILN_REQUIRE_GPU();
  Tensor ids(DType::kI64, {2, 9}), mask(DType::kI64, {2, 9});
  for (int64_t i = 0; i < 18; ++i) {
    ids.data<int64_t>()[i] = (i * 37) % 30000;
    mask.data<int64_t>()[i] = i % 9 < 7 ? 1 : 0;
  }
  const std::map<std::string, std::map<std::string, Tensor>> cases = {
      {"bert_base", {{"input_ids", ids}, {"attention_mask", mask}}},
      {"gpt2", {{"input_ids", ids}}},
      {"vit_b_16", {{"image", testing::random_f32({1, 3, 224, 224}, 7)}}}};
  for (const auto& [name, inputs] : cases) {
    SCOPED_TRACE(name);
    const std::string bytes = testing::load_skeleton(name);
    std::map<std::string, Tensor> out[2];
    for (BackendKind kind : {BackendKind::kCpu, BackendKind::kCuda}) {
      BuildConfig cfg;
      cfg.backend = kind;
      auto e = Builder::build_from_bytes(bytes, cfg);
      ASSERT_TRUE(e.ok()) << e.status().to_string();
      auto ctx = e->create_context();
      ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
      auto r = ctx->infer(inputs);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      out[kind == BackendKind::kCuda] = *r;
    }
    for (const auto& [oname, want] : out[0]) {
      const Tensor& got = out[1].at(oname);
      ASSERT_EQ(got.dims(), want.dims());
      double scale = 0, err = 0;
      for (int64_t i = 0; i < want.numel(); ++i) {
        scale = std::max(scale, std::fabs(want.get_as_double(i)));
        err = std::max(err, std::fabs(got.get_as_double(i) - want.get_as_double(i)));
      }
      EXPECT_LE(err, 1e-4 * (scale + 1e-30))
          << oname << ": max abs error " << err << " (max |y| " << scale << ")";
    }
  }
}

}  // namespace
}  // namespace kiln
