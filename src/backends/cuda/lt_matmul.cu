#include "backends/cuda/lt_matmul.h"

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <type_traits>

#include "backends/cuda/cuda_check.h"

namespace kiln::cuda {

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

// Largest power of two (<= 256, cuBLASLt's default assumption) that divides the address. Batch slices and
// views of f16/bf16 data can sit at 2-byte offsets; the heuristic must only offer algorithms that handle
// them.
uint32_t pointer_alignment(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && addr % align != 0) align >>= 1;
  return align;
}

cublasLtEpilogue_t epilogue_for(bool bias, LtActivation act) {
  switch (act) {
    case LtActivation::kRelu:
      return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case LtActivation::kGeluTanh:
      return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    default:
      return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  }
}

// Everything the descriptors and the algorithm depend on. Pointers only through their alignment.
struct PlanKey {
  DType dtype;
  int64_t m, n, k, batch, stride_a, stride_b, stride_c;
  bool trans_a, trans_b, bias, tf32;
  LtActivation act;
  uint32_t align_a, align_b, align_c, align_d;
  auto tie() const {
    return std::tie(dtype, m, n, k, batch, stride_a, stride_b, stride_c, trans_a, trans_b, bias, tf32, act,
                    align_a, align_b, align_c, align_d);
  }
  bool operator<(const PlanKey& o) const { return tie() < o.tie(); }
};

// The descriptors and algorithm of one problem shape.
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  bool act_fused = false;  // the epilogue applies the activation
  bool timed = false;      // made with timing allowed (the fastest candidate, or the only one)
  std::string tactic;
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// Per-context cache of plans (Resources::kernel_state["cublaslt"]), shared by every cuBLASLt kernel.
struct LtPlanCache : KernelState {
  // Dynamic shapes add a plan per new shape; past this many the cache starts over rather than grow unbounded.
  static constexpr size_t kMaxPlans = 4096;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;
};

LtPlanCache& plan_cache(Resources& res) {
  auto& slot = res.kernel_state["cublaslt"];
  if (!slot) slot = std::make_shared<LtPlanCache>();
  return static_cast<LtPlanCache&>(*slot);
}

Status layout(cublasLtMatrixLayout_t* l, cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld,
              int64_t batch, int64_t stride) {
  KILN_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    int32_t count = static_cast<int32_t>(batch);
    KILN_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                       &stride, sizeof(stride)));
  }
  return Status();
}

std::string describe_algo(const cublasLtMatmulAlgo_t& algo, cublasLtEpilogue_t epi, bool timed) {
  int id = -1, tile = -1, stages = -1, splitk = -1;
  size_t got = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id), &got);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile), &got);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages), &got);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof(splitk), &got);
  return fmt::format("cublasLt algo={} tile={} stages={} splitK={} epilogue={} ({})", id, tile, stages,
                     splitk, static_cast<int>(epi), timed ? "timed" : "heuristic");
}

// Descriptors for p with the given epilogue; the heuristic's candidates (up to max_algos) into heur.
Status make_plan(KernelContext& ctx, const LtMatmul& p, const PlanKey& key, cublasLtEpilogue_t epi,
                 Plan& plan, std::vector<cublasLtMatmulHeuristicResult_t>& heur) {
  const cudaDataType_t t = cuda_type(p.dtype);
  const cublasComputeType_t compute = key.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.op, compute, CUDA_R_32F));
  // Column-major view: Dᵀ[n,m] = op(B)ᵀ[n,k] · op(A)ᵀ[k,m]. Row-major X is column-major Xᵀ.
  cublasOperation_t op_first = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;   // "A" of cuBLAS = our B
  cublasOperation_t op_second = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // "B" of cuBLAS = our A
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (p.bias) {
    // The bias runs along cuBLAS's rows, i.e. our columns: one value per output column n.
    KILN_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof(t)));
    KILN_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)));
  }
  // Stored (column-major) shapes: our B [k,n] row-major is [n,k] column-major (ld n); transposed, [k,n] (ld
  // k).
  const int64_t b_rows = p.trans_b ? p.k : p.n, b_cols = p.trans_b ? p.n : p.k;
  const int64_t a_rows = p.trans_a ? p.m : p.k, a_cols = p.trans_a ? p.k : p.m;
  KILN_RETURN_IF_ERROR(layout(&plan.a, t, b_rows, b_cols, b_rows, p.batch, p.stride_b));
  KILN_RETURN_IF_ERROR(layout(&plan.b, t, a_rows, a_cols, a_rows, p.batch, p.stride_a));
  KILN_RETURN_IF_ERROR(layout(&plan.c, t, p.n, p.m, p.n, p.batch, p.stride_c));

  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>,
                  decltype(&cublasLtMatmulPreferenceDestroy)>
      pref_guard(pref, cublasLtMatmulPreferenceDestroy);
  size_t ws = ctx.res().workspace_bytes;
  KILN_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  // cuBLAS's A is our B (and its B our A).
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_d}};
  for (const auto& [attr, value] : aligns)
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
  int found = 0;
  heur.resize(8);
  KILN_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.res().cublaslt, plan.op, plan.a, plan.b, plan.c,
                                                   plan.c, pref, static_cast<int>(heur.size()), heur.data(),
                                                   &found));
  heur.resize(found);
  return Status();
}

// Times each candidate on the real buffers (a few runs each) and returns the fastest one's index.
Status time_candidates(KernelContext& ctx, const LtMatmul& p, Plan& plan,
                       const std::vector<cublasLtMatmulHeuristicResult_t>& heur, const void* a, const void* b,
                       const void* c, void* d, size_t* best) {
  cudaEvent_t start = nullptr, stop = nullptr;
  KILN_CUDA_CHECK(cudaEventCreate(&start));
  std::unique_ptr<CUevent_st, decltype(&cudaEventDestroy)> start_guard(start, cudaEventDestroy);
  KILN_CUDA_CHECK(cudaEventCreate(&stop));
  std::unique_ptr<CUevent_st, decltype(&cudaEventDestroy)> stop_guard(stop, cudaEventDestroy);
  float best_ms = 0;
  *best = 0;
  bool any = false;
  constexpr int kRuns = 3;
  for (size_t i = 0; i < heur.size(); ++i) {
    auto launch = [&] {
      return cublasLtMatmul(ctx.res().cublaslt, plan.op, &p.alpha, b, plan.a, a, plan.b, &p.beta, c, plan.c,
                            d, plan.c, &heur[i].algo, ctx.res().workspace, heur[i].workspaceSize,
                            ctx.stream());
    };
    if (launch() != CUBLAS_STATUS_SUCCESS) continue;  // warm-up; an algorithm that refuses is skipped
    KILN_CUDA_CHECK(cudaEventRecord(start, ctx.stream()));
    for (int r = 0; r < kRuns; ++r) KILN_CUBLAS_CHECK(launch());
    KILN_CUDA_CHECK(cudaEventRecord(stop, ctx.stream()));
    KILN_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (!any || ms < best_ms) best_ms = ms, *best = i, any = true;
  }
  return Status();
}

}  // namespace

Status lt_matmul(KernelContext& ctx, const LtMatmul& p, const void* a, const void* b, const void* c, void* d,
                 bool* act_applied) {
  if (act_applied) *act_applied = p.act == LtActivation::kNone;
  if (p.m == 0 || p.n == 0 || p.batch == 0) return Status();
  if (p.k == 0) return ctx.error("K = 0 matmuls are not supported on the GPU (m={}, n={})", p.m, p.n);
  if (!c) c = d;
  Resources& res = ctx.res();
  PlanKey key{p.dtype,
              p.m,
              p.n,
              p.k,
              p.batch,
              p.stride_a,
              p.stride_b,
              p.stride_c,
              p.trans_a,
              p.trans_b,
              p.bias != nullptr,
              p.dtype == DType::kF32 && res.allow_tf32,
              p.act,
              pointer_alignment(a),
              pointer_alignment(b),
              pointer_alignment(c),
              pointer_alignment(d)};
  LtPlanCache& cache = plan_cache(res);
  auto it = cache.plans.find(key);
  // Timing runs write D, so they need a C that is not D (or beta 0), and no stream capture in progress.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  KILN_CUDA_CHECK(cudaStreamIsCapturing(ctx.stream(), &capture));
  const bool can_time =
      res.time_tactics && capture == cudaStreamCaptureStatusNone && (p.beta == 0.f || c != d);
  if (it == cache.plans.end() || (can_time && !it->second->timed)) {
    auto plan = std::make_unique<Plan>();
    std::vector<cublasLtMatmulHeuristicResult_t> heur;
    cublasLtEpilogue_t epi = epilogue_for(p.bias != nullptr, p.act);
    KILN_RETURN_IF_ERROR(make_plan(ctx, p, key, epi, *plan, heur));
    plan->act_fused = p.act != LtActivation::kNone;
    if (heur.empty() && p.act != LtActivation::kNone) {
      // No algorithm with the activation in the epilogue: bias only, the caller applies the activation.
      plan = std::make_unique<Plan>();
      epi = epilogue_for(p.bias != nullptr, LtActivation::kNone);
      KILN_RETURN_IF_ERROR(make_plan(ctx, p, key, epi, *plan, heur));
      plan->act_fused = false;
    }
    if (heur.empty())
      return ctx.error("cuBLASLt has no algorithm for this matmul (m={}, n={}, k={}, batch={}, {})", p.m, p.n,
                       p.k, p.batch, dtype_name(p.dtype));
    size_t pick = 0;
    if (can_time && heur.size() > 1)
      KILN_RETURN_IF_ERROR(time_candidates(ctx, p, *plan, heur, a, b, c, d, &pick));
    plan->timed = can_time;  // also with one candidate: nothing left to time, do not ask again
    plan->algo = heur[pick].algo;
    plan->workspace = heur[pick].workspaceSize;
    plan->tactic = describe_algo(plan->algo, epi, can_time && heur.size() > 1);
    if (cache.plans.size() >= LtPlanCache::kMaxPlans) cache.plans.clear();
    it = cache.plans.insert_or_assign(key, std::move(plan)).first;
  }
  Plan& plan = *it->second;
  if (p.act != LtActivation::kNone && !plan.act_fused && !act_applied)
    return ctx.error("cuBLASLt has no {} epilogue for this matmul (m={}, n={}, k={})",
                     p.act == LtActivation::kRelu ? "ReLU" : "GELU", p.m, p.n, p.k);
  if (p.bias)
    KILN_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)));
  KILN_CUBLAS_CHECK(cublasLtMatmul(res.cublaslt, plan.op, &p.alpha, b, plan.a, a, plan.b, &p.beta, c, plan.c,
                                   d, plan.c, &plan.algo, res.workspace, plan.workspace, ctx.stream()));
  res.tactic = plan.tactic;
  if (act_applied) *act_applied = p.act == LtActivation::kNone || plan.act_fused;
  return Status();
}

}  // namespace kiln::cuda
