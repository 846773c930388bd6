// Shared helpers for the row-wise CUDA kernels (softmax.cu, layer_norm.cu, reduce.cu, batch_norm.cu):
// f32 <-> element conversions, 16-byte packs, warp/block reductions, float dtype dispatch, and parameter
// loads whose dtype is only known at run time. Everything here is inline; the kernels live in the .cu files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "backends/cuda/kernel.h"

namespace kiln::cuda::nrk {

// ---- element <-> f32 ------------------------------------------------------------------------------------
template <class T>
__device__ __forceinline__ float to_f(T v);
template <>
__device__ __forceinline__ float to_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// P elements moved as one aligned access (16 bytes for the widest pack).
template <class T, int P>
struct alignas(sizeof(T) * P) Pack {
  T v[P];
};

template <class T, int P>
__device__ __forceinline__ void load_pack(const T* base, int64_t pack_index, float (&out)[P]) {
  const Pack<T, P> p = reinterpret_cast<const Pack<T, P>*>(base)[pack_index];
#pragma unroll
  for (int j = 0; j < P; ++j) out[j] = to_f<T>(p.v[j]);
}

template <class T, int P>
__device__ __forceinline__ void store_pack(T* base, int64_t pack_index, const float (&in)[P]) {
  Pack<T, P> p;
#pragma unroll
  for (int j = 0; j < P; ++j) p.v[j] = from_f<T>(in[j]);
  reinterpret_cast<Pack<T, P>*>(base)[pack_index] = p;
}

// ---- reductions ---------------------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// fmaxf ignores NaN, like std::max(m, x) with m never NaN in the CPU reference.
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum/max; every thread gets the result. blockDim.x must be a multiple of 32; sh holds 32 floats.
// Safe to call repeatedly with the same sh (the leading barrier protects the previous call's reads).
__device__ __forceinline__ float block_sum(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < nwarps ? sh[lane] : 0.f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < nwarps ? sh[lane] : -INFINITY;
  return warp_max(v);
}

// ---- parameters whose dtype is known only at run time (scale/bias may differ from X) -----------------------
enum FCode : int { kCodeF32 = 0, kCodeF16 = 1, kCodeBF16 = 2 };

inline int fcode(DType t) { return t == DType::kF16 ? kCodeF16 : (t == DType::kBF16 ? kCodeBF16 : kCodeF32); }
inline bool is_cuda_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

__device__ __forceinline__ float load_any(const void* p, int code, int64_t i) {
  if (code == kCodeF16) return __half2float(static_cast<const __half*>(p)[i]);
  if (code == kCodeBF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

__device__ __forceinline__ void store_any(void* p, int code, int64_t i, float v) {
  if (code == kCodeF16)
    static_cast<__half*>(p)[i] = __float2half_rn(v);
  else if (code == kCodeBF16)
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  else
    static_cast<float*>(p)[i] = v;
}

// ---- host helpers -----------------------------------------------------------------------------------------
template <class T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) with the CUDA element type of a float dtype; false for other dtypes.
template <class F>
bool dispatch_float(DType t, F&& f) {
  switch (t) {
    case DType::kF32: f(Tag<float>{}); return true;
    case DType::kF16: f(Tag<__half>{}); return true;
    case DType::kBF16: f(Tag<__nv_bfloat16>{}); return true;
    default: return false;
  }
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grid size for grid-stride loops: enough blocks to cover `work` items, capped.
inline unsigned grid_for(int64_t work, int64_t per_block) {
  int64_t g = work / per_block + (work % per_block != 0);  // not ceil_div: work + per_block - 1 can wrap
  if (g < 1) g = 1;
  if (g > (int64_t{1} << 20)) g = int64_t{1} << 20;
  return static_cast<unsigned>(g);
}

}  // namespace kiln::cuda::nrk
