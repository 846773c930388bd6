// FusedAttention on the GPU (op semantics: src/ops/fused_attention.cpp). Never writes the [Sq, Sk] scores:
//  - f16/bf16 with head dims <= 128: a flash-attention-2 style forward. A block of 4 warps takes 64 query
//  rows
//    (16 a warp) of one (batch, head); K/V tiles of 64 keys stream through shared memory (cp.async, double
//    buffered; rows padded by 16 bytes so ldmatrix is conflict-free). S = Q K^T and O += P V run on tensor
//    cores (mma.sync m16n8k16, f32 accumulation); the softmax is online in f32 (exp2 with log2(e) folded into
//    the scale), P goes to the second MMA from registers. Head dims are padded to 32/64/128 with zeros.
//  - f32 (exact f32 math, as TF32 is off by default) and head dims 129..512 of any dtype: the same online
//  softmax
//    on CUDA cores, 16 query rows a block, 32-key chunks in shared memory, a lane per key then a lane per
//    output column.
// Both skip key blocks above the diagonal when causal, give NaN for rows with no unmasked key (0 with
// nan_to_zero), and zeros when Sk == 0, like the CPU reference.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"

namespace kiln::cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kThreads = 128;  // 4 warps, both kernels

struct AttnParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* mask = nullptr;
  void* o = nullptr;
  int H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
  int k_group = 1, v_group = 1;                                        // query heads per K / V head
  int64_t q_sb = 0, q_sh = 0, k_sb = 0, k_sh = 0, v_sb = 0, v_sh = 0;  // element strides, 0 when broadcast
  int mask_kind = 0;  // 0 none, 1 bool (false: -inf), 2 additive in Q's dtype
  int64_t m_sb = 0, m_sh = 0, m_sq = 0, m_sk = 0;
  float scale_log2 = 0.f;  // scale * log2(e)
  int causal = 0, nan_to_zero = 0;
};

template <class T>
__device__ __forceinline__ float to_f(T v);
template <>
__device__ __forceinline__ float to_f<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float to_f<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Two floats as one 32-bit MMA operand register (the lower column in the low half).
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// D += A (16x16, row) * B (16x8, col), f32 accumulators.
template <class T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// 16 bytes global -> shared; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Rows [row0, row0 + ROWS) x cols [0, DP) of a row-major [rows, cols] matrix into shared memory (row stride
// DP + 8), zeros outside it. VEC: 16-byte cp.async (cols % 8 == 0, 16-byte aligned rows); else plain loads.
template <class T, int ROWS, int DP, bool VEC>
__device__ __forceinline__ void load_tile(T* s, const T* g, int row0, int rows, int cols, int tid) {
  constexpr int LDS = DP + 8;
  if constexpr (VEC) {
    constexpr int kChunks = DP / 8;
#pragma unroll
    for (int c = tid; c < ROWS * kChunks; c += kThreads) {
      const int r = c / kChunks, col = (c % kChunks) * 8, gr = row0 + r;
      const bool valid = gr < rows && col < cols;
      cp_async16(s + r * LDS + col, valid ? g + static_cast<int64_t>(gr) * cols + col : g, valid);
    }
  } else {
    for (int e = tid; e < ROWS * DP; e += kThreads) {
      const int r = e / DP, col = e % DP, gr = row0 + r;
      s[r * LDS + col] = gr < rows && col < cols ? g[static_cast<int64_t>(gr) * cols + col] : from_f<T>(0.f);
    }
  }
}

// The additive (log2 units) or masking contribution for score (row, col); -inf when masked.
__device__ __forceinline__ bool masked_out(const AttnParams& p, int row, int col) {
  return col >= p.Sk || (p.causal && col > row);
}
template <class T>
__device__ __forceinline__ float apply_mask(const AttnParams& p, int b, int h, int row, int col, float x) {
  const int64_t mi = b * p.m_sb + h * p.m_sh + row * p.m_sq + col * p.m_sk;
  if (p.mask_kind == 1) return static_cast<const uint8_t*>(p.mask)[mi] ? x : -INFINITY;
  return x + to_f<T>(static_cast<const T*>(p.mask)[mi]) * kLog2e;
}

template <class T, int DP, bool VEC>
__global__ void __launch_bounds__(kThreads) flash_attention_kernel(const AttnParams p) {
  constexpr int BM = 64, BN = 64, LDS = DP + 8, KSTEPS = DP / 16, NT = BN / 8, OT = DP / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + BM * LDS;      // two stages
  T* sV = sK + 2 * BN * LDS;  // two stages
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int bh = blockIdx.x, b = bh / p.H, h = bh % p.H;
  const int m0 = blockIdx.y * BM;
  const T* q = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* k = static_cast<const T*>(p.k) + b * p.k_sb + (h / p.k_group) * p.k_sh;
  const T* v = static_cast<const T*>(p.v) + b * p.v_sb + (h / p.v_group) * p.v_sh;
  // Causal: keys past the block's last row are masked for every row, so those blocks are skipped.
  const int n_end = p.causal ? min(p.Sk, m0 + BM) : p.Sk;
  const int nblocks = (n_end + BN - 1) / BN;

  load_tile<T, BM, DP, VEC>(sQ, q, m0, p.Sq, p.D, tid);
  cp_async_commit();
  if (nblocks > 0) {
    load_tile<T, BN, DP, VEC>(sK, k, 0, p.Sk, p.D, tid);
    load_tile<T, BN, DP, VEC>(sV, v, 0, p.Sk, p.Dv, tid);
  }
  cp_async_commit();
  cp_async_wait<1>();
  __syncthreads();
  uint32_t qf[KSTEPS][4];
#pragma unroll
  for (int kk = 0; kk < KSTEPS; ++kk)
    ldsm_x4(qf[kk], sQ + (warp * 16 + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8);

  float o[OT][4];
#pragma unroll
  for (int t = 0; t < OT; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.f;
  float row_m[2] = {-INFINITY, -INFINITY}, row_l[2] = {0.f, 0.f};
  const int r_lo = m0 + warp * 16 + (lane >> 2);  // this thread's rows: r_lo and r_lo + 8

  for (int nb = 0; nb < nblocks; ++nb) {
    const int st = nb & 1;
    if (nb + 1 < nblocks) {
      load_tile<T, BN, DP, VEC>(sK + (st ^ 1) * BN * LDS, k, (nb + 1) * BN, p.Sk, p.D, tid);
      load_tile<T, BN, DP, VEC>(sV + (st ^ 1) * BN * LDS, v, (nb + 1) * BN, p.Sk, p.Dv, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const T* cK = sK + st * BN * LDS;
    const T* cV = sV + st * BN * LDS;

    float s[NT][4];
#pragma unroll
    for (int t = 0; t < NT; ++t) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; ++kk)
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        uint32_t kf[4];
        ldsm_x4(kf, cK + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * LDS + kk * 16 + ((lane >> 3) & 1) * 8);
        mma16816<T>(s[2 * np], qf[kk], kf[0], kf[1]);
        mma16816<T>(s[2 * np + 1], qf[kk], kf[2], kf[3]);
      }

    const int n0 = nb * BN;
    const bool edge = p.mask_kind != 0 || n0 + BN > p.Sk || (p.causal && n0 + BN - 1 > m0);
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[t][e] * p.scale_log2;
        if (edge) {
          const int col = n0 + t * 8 + (lane & 3) * 2 + (e & 1), row = r_lo + (e >> 1) * 8;
          if (masked_out(p, row, col))
            x = -INFINITY;
          else if (p.mask_kind != 0 && row < p.Sq)
            x = apply_mask<T>(p, b, h, row, col, x);
        }
        s[t][e] = x;
      }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int t = 0; t < NT; ++t) mx = fmaxf(mx, fmaxf(s[t][2 * r], s[t][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(row_m[r], mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // all masked so far: exp2(-inf - 0) = 0
      const float alpha = exp2f(row_m[r] - m_use);
      row_m[r] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        s[t][2 * r] = exp2f(s[t][2 * r] - m_use);
        s[t][2 * r + 1] = exp2f(s[t][2 * r + 1] - m_use);
        sum += s[t][2 * r] + s[t][2 * r + 1];
      }
      row_l[r] = row_l[r] * alpha + sum;  // this thread's columns; the quad is summed at the end
#pragma unroll
      for (int t = 0; t < OT; ++t) {
        o[t][2 * r] *= alpha;
        o[t][2 * r + 1] *= alpha;
      }
    }

#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      // The S accumulators of key tiles 2kk and 2kk+1 are exactly the A operand layout of P.
      const uint32_t a[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                             pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < DP / 16; ++dp) {
        uint32_t vf[4];
        ldsm_x4_trans(vf,
                      cV + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LDS + dp * 16 + (lane >> 4) * 8);
        mma16816<T>(o[2 * dp], a, vf[0], vf[1]);
        mma16816<T>(o[2 * dp + 1], a, vf[2], vf[3]);
      }
    }
    __syncthreads();  // the stage is refilled two iterations on
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = row_l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = r_lo + r * 8;
    if (row >= p.Sq) continue;
    const float inv = l > 0.f ? 1.f / l : (p.nan_to_zero ? 0.f : __int_as_float(0x7fc00000));
    T* out = static_cast<T*>(p.o) + (static_cast<int64_t>(bh) * p.Sq + row) * p.Dv;
#pragma unroll
    for (int t = 0; t < OT; ++t) {
      const int col = t * 8 + (lane & 3) * 2;
      if (col + 1 < p.Dv && (p.Dv & 1) == 0) {  // an even row length keeps pairs 4-byte aligned
        *reinterpret_cast<uint32_t*>(out + col) = pack2<T>(o[t][2 * r] * inv, o[t][2 * r + 1] * inv);
      } else {
        if (col < p.Dv) out[col] = from_f<T>(o[t][2 * r] * inv);
        if (col + 1 < p.Dv) out[col + 1] = from_f<T>(o[t][2 * r + 1] * inv);
      }
    }
  }
}

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
  const int bh = blockIdx.x, b = bh / p.H, h = bh % p.H;
  const int m0 = blockIdx.y * BM;
  const T* q = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* k = static_cast<const T*>(p.k) + b * p.k_sb + (h / p.k_group) * p.k_sh;
  const T* v = static_cast<const T*>(p.v) + b * p.v_sb + (h / p.v_group) * p.v_sh;
  for (int e = tid; e < BM * D; e += kThreads) {
    const int row = m0 + e / D;
    sQ[e] = row < p.Sq ? to_f<T>(q[static_cast<int64_t>(row) * D + e % D]) : 0.f;
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
      sK[(e / D) * LDK + e % D] = j < p.Sk ? to_f<T>(k[static_cast<int64_t>(j) * D + e % D]) : 0.f;
    }
    for (int e = tid; e < KC * Dv; e += kThreads) {
      const int j = j0 + e / Dv;
      sV[e] = j < p.Sk ? to_f<T>(v[static_cast<int64_t>(j) * Dv + e % Dv]) : 0.f;
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
    T* out = static_cast<T*>(p.o) + (static_cast<int64_t>(bh) * p.Sq + row) * Dv;
#pragma unroll
    for (int u = 0; u < DVL; ++u)
      if (lane + 32 * u < Dv) out[lane + 32 * u] = from_f<T>(o[r][u] * inv);
  }
}

// Opts a kernel into more than 48 KB of dynamic shared memory (once per instantiation).
template <class K>
Status allow_smem(K kernel, size_t bytes, bool& done) {
  if (done || bytes <= 48 * 1024) return Status();
  KILN_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  done = true;
  return Status();
}

template <class T, int DP, bool VEC>
Status launch_flash(const AttnParams& p, int bh, cudaStream_t st) {
  constexpr size_t kSmem = static_cast<size_t>(64 + 4 * 64) * (DP + 8) * sizeof(T);
  static bool opted = false;
  auto kernel = flash_attention_kernel<T, DP, VEC>;
  KILN_RETURN_IF_ERROR(allow_smem(kernel, kSmem, opted));
  const dim3 grid(static_cast<unsigned>(bh), static_cast<unsigned>((p.Sq + 63) / 64));
  kernel<<<grid, kThreads, kSmem, st>>>(p);
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
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

template <class T, int DP>
Status dispatch_flash_vec(const AttnParams& p, int bh, bool vec, cudaStream_t st) {
  return vec ? launch_flash<T, DP, true>(p, bh, st) : launch_flash<T, DP, false>(p, bh, st);
}

template <class T>
Status dispatch(const AttnParams& p, int bh, bool vec, cudaStream_t st) {
  if constexpr (std::is_same_v<T, float>) {
    return dispatch_simt<T>(p, bh, st);
  } else {
    const int dmax = std::max(p.D, p.Dv);
    if (dmax <= 32) return dispatch_flash_vec<T, 32>(p, bh, vec, st);
    if (dmax <= 64) return dispatch_flash_vec<T, 64>(p, bh, vec, st);
    if (dmax <= 128) return dispatch_flash_vec<T, 128>(p, bh, vec, st);
    return dispatch_simt<T>(p, bh, st);
  }
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

Status run_attention(KernelContext& ctx) {
  const DeviceTensor &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
  DeviceTensor& y = ctx.output(0);
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4 || y.rank() != 4)
    return ctx.error("needs 4-D Q, K, V; got ranks {}, {}, {}", q.rank(), k.rank(), v.rank());
  const int64_t B = y.dims[0], H = y.dims[1], Sq = q.dims[2], D = q.dims[3], Sk = k.dims[2], Dv = v.dims[3];
  if (y.numel() == 0) return Status();
  if (Sk == 0) {  // softmax over no keys, then an empty sum: zeros, as the CPU reference
    KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), ctx.stream()));
    return Status();
  }
  if (D > 512 || Dv > 512)
    return ctx.error("head dims up to 512 are supported on the GPU, got D={} Dv={}", D, Dv);
  if (B * H > int64_t{2147483647} || Sq > int64_t{65535} * 16 || Sk > int64_t{2147483647} / 2)
    return ctx.error("shape [{}, {}, {}, {}] is too large for the attention kernel", B, H, Sq, Sk);
  AttnParams p;
  p.q = q.data;
  p.k = k.data;
  p.v = v.data;
  p.o = y.data;
  p.H = static_cast<int>(H);
  p.Sq = static_cast<int>(Sq);
  p.Sk = static_cast<int>(Sk);
  p.D = static_cast<int>(D);
  p.Dv = static_cast<int>(Dv);
  p.k_group = static_cast<int>(H / k.dims[1]);
  p.v_group = static_cast<int>(H / v.dims[1]);
  auto bh_strides = [](const DeviceTensor& t, int64_t& sb, int64_t& sh) {
    sh = t.dims[1] == 1 ? 0 : t.dims[2] * t.dims[3];
    sb = t.dims[0] == 1 ? 0 : t.dims[1] * t.dims[2] * t.dims[3];
  };
  bh_strides(q, p.q_sb, p.q_sh);
  bh_strides(k, p.k_sb, p.k_sh);
  bh_strides(v, p.v_sb, p.v_sh);
  if (ctx.has_input(3)) {
    const DeviceTensor& m = ctx.input(3);
    if (m.rank() > 4) return ctx.error("mask rank {} is above 4", m.rank());
    p.mask = m.data;
    p.mask_kind = m.dtype == DType::kBool ? 1 : 2;
    // Right-aligned strides onto [B, H, Sq, Sk], 0 on broadcast dims.
    int64_t str[4] = {0, 0, 0, 0};
    int64_t run = 1;
    for (int i = static_cast<int>(m.rank()) - 1, a = 3; i >= 0; --i, --a) {
      str[a] = m.dims[i] == 1 ? 0 : run;
      run *= m.dims[i];
    }
    p.m_sb = str[0];
    p.m_sh = str[1];
    p.m_sq = str[2];
    p.m_sk = str[3];
  }
  const double scale = ctx.node().has_attr("scale") ? ctx.node().attr_float("scale", 1.f)
                                                    : 1.0 / std::sqrt(static_cast<double>(D));
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  p.causal = ctx.node().attr_int("causal", 0) != 0;
  p.nan_to_zero = ctx.node().attr_int("nan_to_zero", 0) != 0;
  const bool vec = D % 8 == 0 && Dv % 8 == 0 && aligned16(q.data) && aligned16(k.data) && aligned16(v.data);
  const int bh = static_cast<int>(B * H);
  switch (q.dtype) {
    case DType::kF32:
      return dispatch<float>(p, bh, vec, ctx.stream());
    case DType::kF16:
      return dispatch<__half>(p, bh, vec, ctx.stream());
    case DType::kBF16:
      return dispatch<__nv_bfloat16>(p, bh, vec, ctx.stream());
    default:
      return ctx.error("dtype {} is not supported", dtype_name(q.dtype));
  }
}

// Q, K, V of one float dtype the kernels know; a mask of bool or that dtype.
bool attention_supported(const ir::Node&, const std::vector<DType>& dts) {
  if (dts.size() < 3) return false;
  const DType t = dts[0];
  if (t != DType::kF32 && t != DType::kF16 && t != DType::kBF16) return false;
  if (dts[1] != t || dts[2] != t) return false;
  return dts.size() < 4 || dts[3] == DType::kUndefined || dts[3] == DType::kBool || dts[3] == t;
}

}  // namespace

void register_cuda_attention(KernelTable& t) {
  t.add({"FusedAttention", run_attention, attention_supported});
}

}  // namespace kiln::cuda
