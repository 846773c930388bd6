// What both FusedAttention kernels share (attention.cu, attention_simt.cuh): the launch parameters, float
// conversions, the causal/mask rules for one score, and the shared-memory opt-in. Included by attention.cu only
// (its anonymous namespace).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/kernels/norm_reduce_common.cuh"

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
  int k_group = 1, v_group = 1;  // query heads per K / V head
  // Element strides of batch, head and row (sequence); batch/head ones are 0 when broadcast.
  int64_t q_sb = 0, q_sh = 0, q_ss = 0, k_sb = 0, k_sh = 0, k_ss = 0, v_sb = 0, v_sh = 0, v_ss = 0;
  int64_t o_sb = 0, o_sh = 0, o_ss = 0;
  int mask_kind = 0;  // 0 none, 1 bool (false: -inf), 2 additive in Q's dtype
  int64_t m_sb = 0, m_sh = 0, m_sq = 0, m_sk = 0;
  // Mask tile classes (0 all masked, 1 mixed, 2 none masked), one byte per 64x64 tile, a row of key tiles per
  // (mask batch, mask head, query tile); strides in bytes, 0 on broadcast dims. Null: every tile counts as
  // mixed when there is a mask.
  const uint8_t* tiles = nullptr;
  int64_t t_sb = 0, t_sh = 0, t_sq = 0;
  float scale_log2 = 0.f;  // scale * log2(e)
  int causal = 0, nan_to_zero = 0;
};

// This block's query tile: grid y walks the query tiles. Causal: the last tiles have the most key tiles, so they
// go first (blocks start in y order) and the short ones fill the tail.
__device__ __forceinline__ int query_tile(const AttnParams& p) {
  return p.causal ? static_cast<int>(gridDim.y) - 1 - static_cast<int>(blockIdx.y) : static_cast<int>(blockIdx.y);
}

// This block's (batch, head) slices of Q, K and V: grid x walks batch x heads; K/V heads may be fewer (GQA).
template <class T>
struct HeadSlices {
  int b, h;
  const T *q, *k, *v;
};
template <class T>
__device__ __forceinline__ HeadSlices<T> head_slices(const AttnParams& p) {
  const int bh = blockIdx.x, b = bh / p.H, h = bh % p.H;
  return {b, h, static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh,
          static_cast<const T*>(p.k) + b * p.k_sb + (h / p.k_group) * p.k_sh,
          static_cast<const T*>(p.v) + b * p.v_sb + (h / p.v_group) * p.v_sh};
}

// Element <-> f32 conversions: the row kernels' own.
using nrk::from_f;
using nrk::to_f;

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

// Opts a kernel into more than 48 KB of dynamic shared memory (once per instantiation).
template <class K>
Status allow_smem(K kernel, size_t bytes, bool& done) {
  if (done || bytes <= 48 * 1024) return Status();
  KILN_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  done = true;
  return Status();
}

}  // namespace

}  // namespace kiln::cuda
