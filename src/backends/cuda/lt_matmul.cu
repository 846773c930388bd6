// cuBLASLt matmuls (see lt_matmul.h). A D whose row pitch n·sizeof(T) is not a multiple of 16 bytes leaves
// cuBLASLt only its slow unvectorised kernels (GPT-2's lm_head: n = 50257 in f16 ran at 126 TFLOPS); large
// such problems compute into a scratch with the pitch rounded up, a chunk of rows at a time, and a copy
// kernel moves each chunk to D with aligned 16-byte stores.
#include "backends/cuda/lt_matmul.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernels/ew_common.cuh"

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

// kAuto pads a misaligned D from this much work per matrix (m·n·k), and only when n is wide enough for the
// output to matter (a narrow one is bound by reading A); the scratch holds at most kMaxPadScratchBytes.
constexpr double kPadMinWork = double(int64_t{1} << 30);
constexpr int64_t kPadMinN = 64;
constexpr size_t kMaxPadScratchBytes = size_t{256} << 20;

// Everything the descriptors and the algorithm depend on. Pointers only through their alignment.
struct PlanKey {
  DType dtype;
  int64_t m, n, k, batch, stride_a, stride_b, stride_c;
  // A's, B's and C/D's leading dimensions (elements): a row chunk keeps the whole A's, a column part the
  // whole B's, the padded scratch has its own.
  int64_t lda, ldb, ldc;
  bool trans_a, trans_b, bias, tf32;
  LtActivation act;
  uint32_t align_a, align_b, align_c, align_d;
  auto tie() const {
    return std::tie(dtype, m, n, k, batch, stride_a, stride_b, stride_c, lda, ldb, ldc, trans_a, trans_b, bias,
                    tf32, act, align_a, align_b, align_c, align_d);
  }
  bool operator<(const PlanKey& o) const { return tie() < o.tie(); }
};

PlanKey key_of(const Resources& res, const LtMatmul& p, int64_t lda, int64_t ldc, const void* a,
               const void* b, const void* c, const void* d) {
  return PlanKey{p.dtype,
                 p.m,
                 p.n,
                 p.k,
                 p.batch,
                 p.stride_a,
                 p.stride_b,
                 p.stride_c,
                 lda,
                 p.trans_b ? p.k : p.n,
                 ldc,
                 p.trans_a,
                 p.trans_b,
                 p.bias != nullptr,
                 p.dtype == DType::kF32 && res.allow_tf32,
                 p.act,
                 pointer_alignment(a),
                 pointer_alignment(b),
                 pointer_alignment(c),
                 pointer_alignment(d)};
}

// The engine-wide tactic cache's key for a plan (kind: "cublasLt" or "cublasLt-pad").
std::string tactic_key(const char* kind, const PlanKey& k) {
  return fmt::format("{}:{},{},{},{},{},{},{},{},{},{},{},{:d},{:d},{:d},{:d},{},{},{},{},{}", kind,
                     static_cast<int>(k.dtype), k.m, k.n, k.k, k.batch, k.stride_a, k.stride_b, k.stride_c, k.lda,
                     k.ldb, k.ldc, k.trans_a, k.trans_b, k.bias, k.tf32, static_cast<int>(k.act), k.align_a, k.align_b,
                     k.align_c, k.align_d);
}

// cublasLtMatmulAlgo_t is opaque bytes, valid for the cuBLASLt version and GPU the engine is tied to.
std::string algo_to_hex(const cublasLtMatmulAlgo_t& algo) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&algo);
  std::string out;
  for (size_t i = 0; i < sizeof(algo); ++i) out += fmt::format("{:02x}", bytes[i]);
  return out;
}
bool algo_from_hex(const std::string& hex, cublasLtMatmulAlgo_t* algo) {
  if (hex.size() != 2 * sizeof(*algo)) return false;
  auto* bytes = reinterpret_cast<unsigned char*>(algo);
  for (size_t i = 0; i < sizeof(*algo); ++i) {
    unsigned v = 0;
    if (std::sscanf(hex.c_str() + 2 * i, "%2x", &v) != 1) return false;
    bytes[i] = static_cast<unsigned char>(v);
  }
  return true;
}

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

// Whether one problem with a misaligned D goes through the padded scratch: chosen on its first uncaptured
// run.
struct PadChoice {
  bool padded = false;
  bool timed = false;      // by timing both ways (else by size, or forced)
  int64_t pitch = 0;       // elements per scratch row: n rounded up to 16 bytes
  int64_t chunk_rows = 0;  // rows per cuBLASLt call
  std::string note;        // how it was chosen, for the tactic string
};

// Per-context cache of plans (Resources::kernel_state["cublaslt"]), shared by every cuBLASLt kernel, and the
// padded mode's choices and scratch.
struct LtPlanCache : KernelState {
  // Dynamic shapes add a plan per new shape; past this many the cache starts over rather than grow unbounded.
  static constexpr size_t kMaxPlans = 4096;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;
  std::map<PlanKey, PadChoice> pad_choices;
  // Outgrown scratch buffers are kept until the context goes: a captured CUDA graph may still write into
  // them.
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
  std::vector<void*> outgrown;
  size_t outgrown_bytes = 0;
  LtPlanCache() = default;
  LtPlanCache(const LtPlanCache&) = delete;
  LtPlanCache& operator=(const LtPlanCache&) = delete;
  ~LtPlanCache() override {
    if (scratch) cudaFree(scratch);
    for (void* q : outgrown) cudaFree(q);
  }
  size_t device_bytes() const override { return scratch_bytes + outgrown_bytes; }
};

LtPlanCache& plan_cache(Resources& res) {
  auto& slot = res.kernel_state["cublaslt"];
  if (!slot) slot = std::make_shared<LtPlanCache>();
  return static_cast<LtPlanCache&>(*slot);
}

// The padded mode's scratch, at least `bytes` (<= kMaxPadScratchBytes); null when it would have to grow
// during stream capture (no allocation there) or the device is out of memory. Grows at least twofold, so a
// run of growing shapes keeps few outgrown buffers.
void* pad_scratch(LtPlanCache& cache, size_t bytes, bool capturing) {
  if (bytes <= cache.scratch_bytes) return cache.scratch;
  if (capturing || bytes > kMaxPadScratchBytes) return nullptr;
  const size_t want = std::min(kMaxPadScratchBytes, std::max(bytes, 2 * cache.scratch_bytes));
  void* q = nullptr;
  // Optional: without it the matmul runs unpadded, so a failure is not an error (device_alloc clears it).
  if (!device_alloc(&q, want, "cuBLASLt padded-matmul scratch").ok()) return nullptr;
  if (cache.scratch) {
    cache.outgrown.push_back(cache.scratch);
    cache.outgrown_bytes += cache.scratch_bytes;
  }
  cache.scratch = q;
  cache.scratch_bytes = want;
  return q;
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
  // k). A, B and C/D take the key's leading dimensions (a chunk of A's rows, a part of B's columns, or the
  // padded scratch).
  const int64_t b_rows = p.trans_b ? p.k : p.n, b_cols = p.trans_b ? p.n : p.k;
  const int64_t a_rows = p.trans_a ? p.m : p.k, a_cols = p.trans_a ? p.k : p.m;
  KILN_RETURN_IF_ERROR(layout(&plan.a, t, b_rows, b_cols, key.ldb, p.batch, p.stride_b));
  KILN_RETURN_IF_ERROR(layout(&plan.b, t, a_rows, a_cols, key.lda, p.batch, p.stride_a));
  KILN_RETURN_IF_ERROR(layout(&plan.c, t, p.n, p.m, key.ldc, p.batch, p.stride_c));

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

// The cached plan of key, made on first use (and remade timed when may_time and it was not; timing runs write
// d, so the caller allows it only when c is not d or beta is 0, or d is scratch).
Status get_plan(KernelContext& ctx, const LtMatmul& p, const PlanKey& key, bool may_time, const void* a,
                const void* b, const void* c, void* d, Plan** out) {
  LtPlanCache& cache = plan_cache(ctx.res());
  auto it = cache.plans.find(key);
  const std::shared_ptr<TacticCache>& tactics = ctx.res().tactics;
  // The key string only when a plan is to be made: a known shape (every eager run after the first) formats nothing.
  const bool to_make = it == cache.plans.end() || (may_time && !it->second->timed);
  const std::string tkey = tactics && to_make ? tactic_key("cublasLt", key) : std::string();
  if (it == cache.plans.end() && tactics) {
    // Chosen before (at build, or by another context): "act_fused workspace algo-hex", checked against the
    // descriptors before use; a stale entry falls through to choosing again.
    if (auto stored = tactics->find(tkey)) {
      int fused = 0;
      unsigned long long ws = 0;
      char hex[2 * sizeof(cublasLtMatmulAlgo_t) + 1] = {};
      auto plan = std::make_unique<Plan>();
      std::vector<cublasLtMatmulHeuristicResult_t> heur;
      if (std::sscanf(stored->c_str(), "%d %llu %128s", &fused, &ws, hex) == 3 &&
          algo_from_hex(hex, &plan->algo) && ws <= ctx.res().workspace_bytes &&
          (fused == 0 || p.act != LtActivation::kNone)) {
        const cublasLtEpilogue_t epi = epilogue_for(p.bias != nullptr, fused ? p.act : LtActivation::kNone);
        KILN_RETURN_IF_ERROR(make_plan(ctx, p, key, epi, *plan, heur));
        cublasLtMatmulHeuristicResult_t check{};
        if (cublasLtMatmulAlgoCheck(ctx.res().cublaslt, plan->op, plan->a, plan->b, plan->c, plan->c, &plan->algo,
                                    &check) == CUBLAS_STATUS_SUCCESS &&
            check.workspaceSize <= ctx.res().workspace_bytes) {
          plan->act_fused = fused != 0;
          plan->workspace = static_cast<size_t>(ws);
          plan->timed = true;
          plan->tactic = describe_algo(plan->algo, epi, true) + " (cached)";
          if (cache.plans.size() >= LtPlanCache::kMaxPlans) cache.plans.clear();
          it = cache.plans.insert_or_assign(key, std::move(plan)).first;
        }
      }
    }
  }
  if (it == cache.plans.end() || (may_time && !it->second->timed)) {
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
    if (may_time && heur.size() > 1)
      KILN_RETURN_IF_ERROR(time_candidates(ctx, p, *plan, heur, a, b, c, d, &pick));
    plan->timed = may_time;  // also with one candidate: nothing left to time, do not ask again
    plan->algo = heur[pick].algo;
    plan->workspace = heur[pick].workspaceSize;
    plan->tactic = describe_algo(plan->algo, epi, may_time && heur.size() > 1);
    if (may_time && tactics)
      tactics->put(tkey, fmt::format("{} {} {}", plan->act_fused ? 1 : 0, plan->workspace, algo_to_hex(plan->algo)));
    if (cache.plans.size() >= LtPlanCache::kMaxPlans) cache.plans.clear();
    it = cache.plans.insert_or_assign(key, std::move(plan)).first;
  }
  *out = it->second.get();
  return Status();
}

Status launch_plan(KernelContext& ctx, Plan& plan, const LtMatmul& p, const void* a, const void* b,
                   const void* c, void* d) {
  Resources& res = ctx.res();
  if (p.bias)
    KILN_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)));
  KILN_CUBLAS_CHECK(cublasLtMatmul(res.cublaslt, plan.op, &p.alpha, b, plan.a, a, plan.b, &p.beta, c, plan.c,
                                   d, plan.c, &plan.algo, res.workspace, plan.workspace, ctx.stream()));
  res.tactic = plan.tactic;
  return Status();
}

// The whole problem in one cuBLASLt call, D at its own pitch n. caller_acts: an activation no epilogue has is
// left to the caller (else that is an error).
Status run_direct(KernelContext& ctx, const LtMatmul& p, const void* a, const void* b, const void* c, void* d,
                  bool capturing, bool caller_acts, bool* act_fused) {
  const PlanKey key = key_of(ctx.res(), p, p.trans_a ? p.m : p.k, p.n, a, b, c, d);
  const bool may_time = ctx.res().time_tactics && !capturing && (p.beta == 0.f || c != d);
  Plan* plan = nullptr;
  KILN_RETURN_IF_ERROR(get_plan(ctx, p, key, may_time, a, b, c, d, &plan));
  if (p.act != LtActivation::kNone && !plan->act_fused && !caller_acts)
    return ctx.error("cuBLASLt has no {} epilogue for this matmul (m={}, n={}, k={})",
                     p.act == LtActivation::kRelu ? "ReLU" : "GELU", p.m, p.n, p.k);
  *act_fused = plan->act_fused;
  return launch_plan(ctx, *plan, p, a, b, c, d);
}

// --- the padded mode's row copies
// ----------------------------------------------------------------------------

template <class T, LtActivation kAct>
__device__ __forceinline__ T act_elem(T v) {
  if constexpr (kAct == LtActivation::kNone) {
    return v;
  } else {
    using N = ew::Num<T>;
    float x = static_cast<float>(N::load(v));
    if constexpr (kAct == LtActivation::kRelu)
      x = x > 0.f ? x : 0.f;
    else
      x = 0.5f * x * (1.f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
    return N::store(x);
  }
}

template <class T, LtActivation kAct>
__device__ __forceinline__ uint4 act_vec(uint4 v) {
  if constexpr (kAct == LtActivation::kNone) {
    return v;
  } else {
    constexpr int kN = 16 / sizeof(T);
    T e[kN];
    memcpy(e, &v, 16);
#pragma unroll
    for (int i = 0; i < kN; ++i) e[i] = act_elem<T, kAct>(e[i]);
    memcpy(&v, e, 16);
    return v;
  }
}

// Bytes [s, s + 16) of the 32 bytes lo, hi (little-endian), 0 <= s < 16. The word selects are written out so
// the compiler keeps w in registers (a dynamic index would put it in local memory).
__device__ __forceinline__ uint4 bytes_from(uint4 lo, uint4 hi, int s) {
  const uint32_t w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
  const int q = s >> 2;
  const unsigned sh = static_cast<unsigned>(s & 3) * 8;
  uint32_t o[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t x0 = q == 0 ? w[i] : q == 1 ? w[i + 1] : q == 2 ? w[i + 2] : w[i + 3];
    const uint32_t x1 = q == 0 ? w[i + 1] : q == 1 ? w[i + 2] : q == 2 ? w[i + 3] : w[i + 4];
    o[i] = __funnelshift_r(x0, x1, sh);
  }
  return make_uint4(o[0], o[1], o[2], o[3]);
}

// dst row r = kAct(src row r) for rows of row_bytes; the byte pitches sp and dp may leave either side's rows
// at any element alignment. Threads (x) store aligned 16-byte vectors of a dst row (y), each built from the
// two aligned 16-byte src blocks that hold its bytes: every load and store is a full 16-byte one. The few
// elements before the row's first aligned dst address and after its last whole vector go one by one.
template <class T, LtActivation kAct>
__global__ void copy_rows_kernel(const char* __restrict__ src, int64_t sp, char* __restrict__ dst, int64_t dp,
                                 int64_t rows, int64_t row_bytes) {
  constexpr int64_t kEs = sizeof(T);
  const int64_t x = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const char* s = src + r * sp;
    char* d = dst + r * dp;
    int64_t head = (16 - static_cast<int64_t>(reinterpret_cast<uintptr_t>(d) & 15)) & 15;
    if (head > row_bytes) head = row_bytes;
    const int64_t nvec = (row_bytes - head) >> 4;
    const int64_t tail = head + (nvec << 4);
    const int64_t loose = (head + row_bytes - tail) / kEs;
    for (int64_t i = x; i < loose; i += stride) {
      const int64_t off = i * kEs < head ? i * kEs : tail + i * kEs - head;
      *reinterpret_cast<T*>(d + off) = act_elem<T, kAct>(*reinterpret_cast<const T*>(s + off));
    }
    // The source bytes of vector j start at s + head + 16j, shift bytes into an aligned block. The second
    // block holds the vector's last bytes whenever shift > 0, so it is never past the row.
    const char* sb = s + head;
    const int shift = static_cast<int>(reinterpret_cast<uintptr_t>(sb) & 15);
    const uint4* s16 = reinterpret_cast<const uint4*>(sb - shift);
    uint4* d16 = reinterpret_cast<uint4*>(d + head);
    if (shift == 0) {
      for (int64_t j = x; j < nvec; j += stride) d16[j] = act_vec<T, kAct>(s16[j]);
    } else {
      for (int64_t j = x; j < nvec; j += stride)
        d16[j] = act_vec<T, kAct>(bytes_from(s16[j], s16[j + 1], shift));
    }
  }
}

// Narrow rows (a few vectors at most): one element per thread over the whole block of rows.
template <class T, LtActivation kAct>
__global__ void copy_rows_flat_kernel(const T* __restrict__ src, int64_t sp, T* __restrict__ dst, int64_t dp,
                                      int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    dst[r * dp + c] = act_elem<T, kAct>(src[r * sp + c]);
  }
}

template <class T, LtActivation kAct>
void launch_copy_rows(cudaStream_t stream, const void* src, int64_t sp, void* dst, int64_t dp, int64_t rows,
                      int64_t cols) {
  constexpr int kThreads = 256;
  const int64_t row_bytes = cols * static_cast<int64_t>(sizeof(T));
  if (row_bytes < 256) {
    const int64_t blocks = std::min<int64_t>((rows * cols + kThreads - 1) / kThreads, ew::kMaxBlocks);
    copy_rows_flat_kernel<T, kAct><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        static_cast<const T*>(src), sp, static_cast<T*>(dst), dp, rows, cols);
    return;
  }
  const int64_t vectors = row_bytes / 16 + 1;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((vectors + kThreads - 1) / kThreads, 1024)),
                  static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  copy_rows_kernel<T, kAct><<<grid, kThreads, 0, stream>>>(
      static_cast<const char*>(src), sp * static_cast<int64_t>(sizeof(T)), static_cast<char*>(dst),
      dp * static_cast<int64_t>(sizeof(T)), rows, row_bytes);
}

// rows x cols elements from src (row pitch sp elements) to dst (pitch dp), act applied on the way.
Status copy_rows(KernelContext& ctx, DType dt, LtActivation act, const void* src, int64_t sp, void* dst,
                 int64_t dp, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return Status();
  auto status = ew::dispatch_float(dt, [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    switch (act) {
      case LtActivation::kRelu:
        launch_copy_rows<T, LtActivation::kRelu>(ctx.stream(), src, sp, dst, dp, rows, cols);
        break;
      case LtActivation::kGeluTanh:
        launch_copy_rows<T, LtActivation::kGeluTanh>(ctx.stream(), src, sp, dst, dp, rows, cols);
        break;
      default:
        launch_copy_rows<T, LtActivation::kNone>(ctx.stream(), src, sp, dst, dp, rows, cols);
        break;
    }
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  if (!status) return ctx.error("padded matmul: dtype {} is not supported (f32, f16, bf16)", dtype_name(dt));
  return *status;
}

// --- the padded mode
// ------------------------------------------------------------------------------------------

// p through the scratch (choice.pitch elements per row), choice.chunk_rows rows at a time: C's rows (beta !=
// 0) are copied in, cuBLASLt computes the chunk in place with every operand aligned, and the rows are copied
// out to D, with any activation the chunk's epilogue lacked applied on the way, so D is always finished.
// An aligned pitch is not enough for cuBLASLt's Hopper kernels: the problem's n must be a multiple of 16
// bytes too (GPT-2's lm_head, n = 50257 in f16: 12.3 ms at any pitch, 1.6 ms at n = 50264; measured with
// bench/cublaslt_probe.cu). So the columns are split: the widest aligned part [0, n_main) in one call and the
// last few (< 16 bytes' worth) in a second, small one. Batched problems go matrix by matrix.
Status run_padded(KernelContext& ctx, const LtMatmul& p, const PadChoice& choice, void* scratch,
                  const void* a, const void* b, const void* c, void* d, bool capturing) {
  Resources& res = ctx.res();
  const int64_t es = static_cast<int64_t>(dtype_size(p.dtype));
  const int64_t lda = p.trans_a ? p.m : p.k;
  const int64_t n_main = p.n / (16 / es) * (16 / es);
  struct Part {
    int64_t col0, cols;
  };
  std::vector<Part> parts;
  if (n_main > 0) parts.push_back({0, n_main});
  if (n_main < p.n) parts.push_back({n_main, p.n - n_main});
  // Timing runs may write the scratch freely: C is copied in after them.
  const bool may_time = res.time_tactics && !capturing;
  std::string gemm_tactic;
  int64_t calls = 0;
  for (int64_t i = 0; i < p.batch; ++i) {
    const char* ai = static_cast<const char*>(a) + i * p.stride_a * es;
    const char* bi = static_cast<const char*>(b) + i * p.stride_b * es;
    const char* ci = static_cast<const char*>(c) + i * p.stride_c * es;
    char* di = static_cast<char*>(d) + i * p.stride_c * es;
    for (int64_t r0 = 0; r0 < p.m; r0 += choice.chunk_rows) {
      const int64_t rows = std::min(choice.chunk_rows, p.m - r0);
      const char* ar = ai + (p.trans_a ? r0 : r0 * p.k) * es;  // stored [k, m] when trans_a: a column range
      LtMatmul sub[2];
      const char* bp[2] = {nullptr, nullptr};
      char* sp[2] = {nullptr, nullptr};
      Plan* plan[2] = {nullptr, nullptr};
      bool fused[2] = {false, false};
      for (size_t j = 0; j < parts.size(); ++j) {
        sub[j] = p;
        sub[j].m = rows;
        sub[j].n = parts[j].cols;
        sub[j].batch = 1;
        sub[j].stride_a = sub[j].stride_b = sub[j].stride_c = 0;
        if (p.bias) sub[j].bias = static_cast<const char*>(p.bias) + parts[j].col0 * es;
        // B stored [n, k] when trans_b: a row range; else a column range of the [k, n] rows.
        bp[j] = bi + (p.trans_b ? parts[j].col0 * p.k : parts[j].col0) * es;
        sp[j] = static_cast<char*>(scratch) + parts[j].col0 * es;
        PlanKey key = key_of(res, sub[j], lda, choice.pitch, ar, bp[j], sp[j], sp[j]);
        key.ldb = p.trans_b ? p.k : p.n;
        // Plans first: timing their candidates runs them on the scratch, which C must only fill afterwards.
        KILN_RETURN_IF_ERROR(get_plan(ctx, sub[j], key, may_time, ar, bp[j], sp[j], sp[j], &plan[j]));
        fused[j] = plan[j]->act_fused;
        if (j == 0 && gemm_tactic.empty()) gemm_tactic = plan[j]->tactic;
      }
      // A full plan cache starts over on insert, which may have dropped the first part's plan: look it up again.
      if (parts.size() == 2) {
        PlanKey key = key_of(res, sub[0], lda, choice.pitch, ar, bp[0], sp[0], sp[0]);
        key.ldb = p.trans_b ? p.k : p.n;
        KILN_RETURN_IF_ERROR(get_plan(ctx, sub[0], key, may_time, ar, bp[0], sp[0], sp[0], &plan[0]));
      }
      if (p.beta != 0.f)
        KILN_RETURN_IF_ERROR(copy_rows(ctx, p.dtype, LtActivation::kNone, ci + r0 * p.n * es, p.n, scratch,
                                       choice.pitch, rows, p.n));
      for (size_t j = 0; j < parts.size(); ++j) {
        KILN_RETURN_IF_ERROR(launch_plan(ctx, *plan[j], sub[j], ar, bp[j], sp[j], sp[j]));
        ++calls;
      }
      // One copy when the parts agree on what their epilogues applied, else a copy per part.
      if (parts.size() == 1 || fused[0] == fused[1]) {
        const LtActivation rest = fused[0] ? LtActivation::kNone : p.act;
        KILN_RETURN_IF_ERROR(
            copy_rows(ctx, p.dtype, rest, scratch, choice.pitch, di + r0 * p.n * es, p.n, rows, p.n));
      } else {
        for (size_t j = 0; j < parts.size(); ++j)
          KILN_RETURN_IF_ERROR(copy_rows(ctx, p.dtype, fused[j] ? LtActivation::kNone : p.act,
                                         static_cast<char*>(scratch) + parts[j].col0 * es, choice.pitch,
                                         di + (r0 * p.n + parts[j].col0) * es, p.n, rows, parts[j].cols));
      }
    }
  }
  const std::string split =
      parts.size() == 2 && n_main > 0 ? fmt::format(", n split {}+{}", n_main, p.n - n_main) : std::string();
  res.tactic = fmt::format("padded ld={}{} ({} call{} of <= {} rows; {}): {}", choice.pitch, split, calls,
                           calls == 1 ? "" : "s", choice.chunk_rows, choice.note, gemm_tactic);
  return Status();
}

// A's and B's addresses and row pitches are 16-byte aligned: a padded D then gives cuBLASLt every operand
// aligned. When they are not, the slow kernels stay whatever D does, and an untimed choice runs direct.
bool inputs_aligned(const LtMatmul& p, const void* a, const void* b) {
  const int64_t es = static_cast<int64_t>(dtype_size(p.dtype));
  const int64_t lda = p.trans_a ? p.m : p.k, ldb = p.trans_b ? p.k : p.n;
  bool ok = (lda * es) % 16 == 0 && (ldb * es) % 16 == 0 && pointer_alignment(a) >= 16 &&
            pointer_alignment(b) >= 16;
  if (p.batch > 1) ok = ok && (p.stride_a * es) % 16 == 0 && (p.stride_b * es) % 16 == 0;
  return ok;
}

// The direct and the padded way a few times each (after a warm-up run of each, which also makes and times
// their plans); ch keeps the faster. Every run leaves the same D (C is not D, or beta is 0).
Status time_padding(KernelContext& ctx, const LtMatmul& p, PadChoice& ch, void* scratch, const void* a,
                    const void* b, const void* c, void* d) {
  cudaEvent_t start = nullptr, stop = nullptr;
  KILN_CUDA_CHECK(cudaEventCreate(&start));
  std::unique_ptr<CUevent_st, decltype(&cudaEventDestroy)> start_guard(start, cudaEventDestroy);
  KILN_CUDA_CHECK(cudaEventCreate(&stop));
  std::unique_ptr<CUevent_st, decltype(&cudaEventDestroy)> stop_guard(stop, cudaEventDestroy);
  bool fused = false;
  ch.note = "timing";
  auto run = [&](bool padded) {
    // The caller's activation duty does not matter here: the run after the choice is the one that counts.
    return padded ? run_padded(ctx, p, ch, scratch, a, b, c, d, false)
                  : run_direct(ctx, p, a, b, c, d, false, true, &fused);
  };
  constexpr int kRuns = 3;
  float ms[2] = {0, 0};
  for (int padded = 0; padded < 2; ++padded) {
    KILN_RETURN_IF_ERROR(run(padded));
    KILN_CUDA_CHECK(cudaEventRecord(start, ctx.stream()));
    for (int r = 0; r < kRuns; ++r) KILN_RETURN_IF_ERROR(run(padded));
    KILN_CUDA_CHECK(cudaEventRecord(stop, ctx.stream()));
    KILN_CUDA_CHECK(cudaEventSynchronize(stop));
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms[padded], start, stop));
  }
  ch.padded = ms[1] < ms[0];
  ch.timed = true;
  ch.note = fmt::format("timed: direct {:.3f} ms, padded {:.3f} ms", ms[0] / kRuns, ms[1] / kRuns);
  return Status();
}

// Whether p goes through the padded scratch, chosen once per problem on its first uncaptured run: a D whose
// pitch is 16-byte aligned never does; kAuto pads large problems (timing both ways when
// Resources::time_tactics allows). *choice null or direct, or *scratch null (none can be had now): run
// direct.
Status choose_padding(KernelContext& ctx, const LtMatmul& p, const void* a, const void* b, const void* c,
                      void* d, bool capturing, const PadChoice** choice, void** scratch) {
  *choice = nullptr;
  *scratch = nullptr;
  const int64_t es = static_cast<int64_t>(dtype_size(p.dtype));
  if ((p.n * es) % 16 == 0 || p.padding == LtPadding::kDirect) return Status();
  if (p.padding == LtPadding::kAuto &&
      (p.n < kPadMinN || double(p.m) * double(p.n) * double(p.k) < kPadMinWork))
    return Status();
  Resources& res = ctx.res();
  LtPlanCache& cache = plan_cache(res);
  const PlanKey key = key_of(res, p, p.trans_a ? p.m : p.k, p.n, a, b, c, d);
  const bool can_time =
      p.padding == LtPadding::kAuto && res.time_tactics && !capturing && (p.beta == 0.f || c != d);
  auto it = cache.pad_choices.find(key);
  const std::shared_ptr<TacticCache>& tactics = res.tactics;
  const bool to_choose = it == cache.pad_choices.end() || (can_time && !it->second.timed);
  const std::string tkey = tactics && to_choose ? tactic_key("cublasLt-pad", key) : std::string();
  std::optional<bool> stored_padded;  // chosen before (at build, or by another context)
  if (it == cache.pad_choices.end() && tactics && p.padding == LtPadding::kAuto)
    if (auto stored = tactics->find(tkey); stored && (*stored == "padded" || *stored == "direct"))
      stored_padded = *stored == "padded";
  if (it == cache.pad_choices.end() || (can_time && !it->second.timed && !stored_padded)) {
    if (capturing) return Status();  // the scratch cannot be allocated now: direct
    PadChoice ch;
    const int64_t per_vector = 16 / es;
    ch.pitch = (p.n + per_vector - 1) / per_vector * per_vector;
    const int64_t row_bytes = ch.pitch * es;
    int64_t rows = std::min<int64_t>(p.m, static_cast<int64_t>(kMaxPadScratchBytes) / row_bytes);
    // Chunks of whole 256-row (or 64-row) blocks keep cuBLASLt's tiles full and A's chunk aligned.
    if (rows < p.m) rows = rows >= 256 ? rows / 256 * 256 : rows >= 64 ? rows / 64 * 64 : rows;
    if (p.max_chunk_rows > 0) rows = std::min(rows, p.max_chunk_rows);
    ch.chunk_rows = rows;
    void* buf = rows > 0 ? pad_scratch(cache, static_cast<size_t>(rows * row_bytes), false) : nullptr;
    ch.padded = buf != nullptr && (p.padding == LtPadding::kPadded || inputs_aligned(p, a, b));
    ch.note = p.padding == LtPadding::kPadded ? "forced" : "by size";
    if (stored_padded) {
      ch.padded = buf != nullptr && *stored_padded;
      ch.timed = true;
      ch.note = "cached";
    } else if (buf && can_time) {
      KILN_RETURN_IF_ERROR(time_padding(ctx, p, ch, buf, a, b, c, d));
      if (tactics) tactics->put(tkey, ch.padded ? "padded" : "direct");
    }
    if (cache.pad_choices.size() >= LtPlanCache::kMaxPlans) cache.pad_choices.clear();
    it = cache.pad_choices.insert_or_assign(key, std::move(ch)).first;
  }
  *choice = &it->second;
  if (it->second.padded)
    *scratch =
        pad_scratch(cache, static_cast<size_t>(it->second.chunk_rows * it->second.pitch * es), capturing);
  return Status();
}

}  // namespace

Status lt_matmul(KernelContext& ctx, const LtMatmul& p, const void* a, const void* b, const void* c, void* d,
                 bool* act_applied) {
  if (act_applied) *act_applied = p.act == LtActivation::kNone;
  if (p.m == 0 || p.n == 0 || p.batch == 0) return Status();
  if (p.k == 0) return ctx.error("K = 0 matmuls are not supported on the GPU (m={}, n={})", p.m, p.n);
  if (!c) c = d;
  // Plans are made (and timed) outside stream capture; inside it, the ones the uncaptured run made are
  // reused.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  KILN_CUDA_CHECK(cudaStreamIsCapturing(ctx.stream(), &capture));
  const bool capturing = capture != cudaStreamCaptureStatusNone;
  const PadChoice* choice = nullptr;
  void* scratch = nullptr;
  KILN_RETURN_IF_ERROR(choose_padding(ctx, p, a, b, c, d, capturing, &choice, &scratch));
  bool act_fused = false;
  if (choice && choice->padded && scratch) {
    KILN_RETURN_IF_ERROR(run_padded(ctx, p, *choice, scratch, a, b, c, d, capturing));
    act_fused = true;  // the copy out applies what an epilogue could not
  } else {
    KILN_RETURN_IF_ERROR(run_direct(ctx, p, a, b, c, d, capturing, act_applied != nullptr, &act_fused));
    if (choice && choice->timed) ctx.res().tactic += " (direct; " + choice->note + ")";
  }
  if (act_applied) *act_applied = p.act == LtActivation::kNone || act_fused;
  return Status();
}

}  // namespace kiln::cuda
