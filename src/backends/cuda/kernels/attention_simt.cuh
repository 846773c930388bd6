// FusedAttention's CUDA-core path (f32, and head dims above 128 in any dtype): the online softmax without
// tensor cores. Included by attention.cu only (its anonymous namespace).
#pragma once
#include "backends/cuda/kernels/attention_common.cuh"

namespace kiln::cuda {

namespace {

// CUDA-core path: 4 warps x 4 query rows; per 32-key chunk a lane scores one key, then each lane accumulates
// output columns lane, lane + 32, … (DVL of them) in f32.
template <class T, int DVL>
__global__ void __launch_bounds__(kThreads) simt_attention_kernel(const AttnParams p) {
  constexpr int RPW = 4, BM = 4 * RPW, KC = 32;
  extern __shared__ __align__(16) float smem_f[];
  const int D = p.D, Dv = p.Dv, LDK = D + 1;  // +1: lane j reads row j of K without bank conflicts
  float* sQ = smem_f;
  float* sK = sQ + BM * D;
  float* sV = sK + KC * LDK;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const HeadSlices<T> hs = head_slices<T>(p);
  const int b = hs.b, h = hs.h;
  const T *q = hs.q, *k = hs.k, *v = hs.v;
  const int qtile = query_tile(p), m0 = qtile * BM;
  for (int e = tid; e < BM * D; e += kThreads) {
    const int row = m0 + e / D;
    sQ[e] = row < p.Sq ? to_f<T>(q[row * p.q_ss + e % D]) : 0.f;
  }
  float o[RPW][DVL], row_m[RPW], row_l[RPW];
#pragma unroll
  for (int r = 0; r < RPW; ++r) {
    row_m[r] = -INFINITY;
    row_l[r] = 0.f;
#pragma unroll
    for (int u = 0; u < DVL; ++u) o[r][u] = 0.f;
  }
  const int n_end = p.causal ? min(p.Sk, m0 + BM) : p.Sk;
  for (int j0 = 0; j0 < n_end; j0 += KC) {
    __syncthreads();
    for (int e = tid; e < KC * D; e += kThreads) {
      const int j = j0 + e / D;
      sK[(e / D) * LDK + e % D] = j < p.Sk ? to_f<T>(k[j * p.k_ss + e % D]) : 0.f;
    }
    for (int e = tid; e < KC * Dv; e += kThreads) {
      const int j = j0 + e / Dv;
      sV[e] = j < p.Sk ? to_f<T>(v[j * p.v_ss + e % Dv]) : 0.f;
    }
    __syncthreads();
    const int live = min(KC, n_end - j0);
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      const int row = m0 + warp * RPW + r;
      if (row >= p.Sq) continue;  // warp-uniform
      const float* qr = sQ + (warp * RPW + r) * D;
      const float* kr = sK + lane * LDK;
      float dot = 0.f;
      for (int d = 0; d < D; ++d) dot = fmaf(qr[d], kr[d], dot);
      const int col = j0 + lane;
      float x = dot * p.scale_log2;
      if (masked_out(p, row, col))
        x = -INFINITY;
      else if (p.mask_kind != 0)
        x = apply_mask<T>(p, b, h, row, col, x);
      float mx = x;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(row_m[r], mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2f(row_m[r] - m_use);
      const float pj = exp2f(x - m_use);
      float sum = pj;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      row_m[r] = m_new;
      row_l[r] = row_l[r] * alpha + sum;
#pragma unroll
      for (int u = 0; u < DVL; ++u) o[r][u] *= alpha;
      for (int jj = 0; jj < live; ++jj) {
        const float pv = __shfl_sync(0xffffffffu, pj, jj);
        const float* vr = sV + jj * Dv;
#pragma unroll
        for (int u = 0; u < DVL; ++u)
          if (lane + 32 * u < Dv) o[r][u] = fmaf(pv, vr[lane + 32 * u], o[r][u]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < RPW; ++r) {
    const int row = m0 + warp * RPW + r;
    if (row >= p.Sq) continue;
    const float l = row_l[r];
    const float inv = l > 0.f ? 1.f / l : (p.nan_to_zero ? 0.f : __int_as_float(0x7fc00000));
    T* out = static_cast<T*>(p.o) + b * p.o_sb + h * p.o_sh + row * p.o_ss;
#pragma unroll
    for (int u = 0; u < DVL; ++u)
      if (lane + 32 * u < Dv) out[lane + 32 * u] = from_f<T>(o[r][u] * inv);
  }
}

template <class T, int DVL>
Status launch_simt(const AttnParams& p, int bh, cudaStream_t st) {
  constexpr int kMaxD = 512;
  static bool opted = false;
  auto kernel = simt_attention_kernel<T, DVL>;
  // Opt in once to the largest size this instantiation can need, then launch with what this call needs.
  KILN_RETURN_IF_ERROR(
      allow_smem(kernel, (16 * kMaxD + 32 * (kMaxD + 1) + 32 * 32 * DVL) * sizeof(float), opted));
  const size_t smem =
      (16 * static_cast<size_t>(p.D) + 32 * static_cast<size_t>(p.D + 1) + 32 * static_cast<size_t>(p.Dv)) *
      sizeof(float);
  const dim3 grid(static_cast<unsigned>(bh), static_cast<unsigned>((p.Sq + 15) / 16));
  kernel<<<grid, kThreads, smem, st>>>(p);
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

template <class T>
Status dispatch_simt(const AttnParams& p, int bh, cudaStream_t st) {
  if (p.Dv <= 32) return launch_simt<T, 1>(p, bh, st);
  if (p.Dv <= 64) return launch_simt<T, 2>(p, bh, st);
  if (p.Dv <= 128) return launch_simt<T, 4>(p, bh, st);
  if (p.Dv <= 256) return launch_simt<T, 8>(p, bh, st);
  return launch_simt<T, 16>(p, bh, st);
}

}  // namespace

}  // namespace kiln::cuda
