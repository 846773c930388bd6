// cuBLASLt matmuls for the MatMul/Gemm and FusedMatMul kernels. Row-major D = A·B is computed as column-major
// Dᵀ = Bᵀ·Aᵀ, so no data moves. Descriptors, layouts and the chosen algorithm are made once per problem shape
// and kept in the context's Resources (LtPlanCache), so a repeated shape does no heuristic query; when
// Resources::time_tactics is set, the top heuristic candidates are timed once and the fastest kept.
#pragma once
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

// What the epilogue applies after alpha·A·B + beta·C + bias. cuBLASLt's GELU is the tanh form.
enum class LtActivation { kNone, kRelu, kGeluTanh };

// How D (and C) are addressed when their row pitch n·sizeof(T) is not a multiple of 16 bytes (odd n in f16:
// GPT-2's vocabulary of 50257), where cuBLASLt only offers slow unvectorised kernels. kPadded computes into a
// scratch with the pitch rounded up to 16 bytes, in row chunks, and copies each chunk out; kAuto does so for
// large problems (and, with Resources::time_tactics, times both ways once per shape). Tests force either.
enum class LtPadding { kAuto, kDirect, kPadded };

// Row-major D[m,n] = act(alpha * op(A)[m,k] · op(B)[k,n] + beta * C[m,n] + bias[n]), optionally
// strided-batched.
struct LtMatmul {
  DType dtype = DType::kF32;  // of A, B, C, D and bias (f32, f16, bf16); accumulation is f32
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;                        // A stored [k,m], B stored [n,k]
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_c = 0;  // in elements; stride 0 repeats a matrix
  float alpha = 1.f, beta = 0.f;
  const void* bias = nullptr;  // [n] or null
  LtActivation act = LtActivation::kNone;
  LtPadding padding = LtPadding::kAuto;
  int64_t max_chunk_rows = 0;  // padded: at most this many rows per chunk (0: as many as the scratch holds)
};

// Runs p on the context's stream. c: the matrix beta scales (null: D itself, read before it is written).
// act_applied (may be null when p.act is kNone): set to whether the epilogue applied p.act; when no algorithm
// has that epilogue for this shape it is left to the caller (the bias is still applied). The padded mode
// allocates its scratch (kept by the context, never freed before it, so captured graphs stay valid) on the
// first uncaptured run of a shape; inside stream capture without that scratch it runs direct.
Status lt_matmul(KernelContext& ctx, const LtMatmul& p, const void* a, const void* b, const void* c, void* d,
                 bool* act_applied = nullptr);

}  // namespace kiln::cuda
