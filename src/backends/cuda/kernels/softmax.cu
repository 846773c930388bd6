// Softmax and LogSoftmax over rows of length n spaced `inner` apart (opset >= 13: one axis; before 13: the
// input flattened to 2-D at `axis`, so a row is everything from axis on). Max-subtracted and accumulated in f32,
// matching the CPU reference's special cases: a row holding NaN, +inf, or only -inf comes out all NaN.
//  - contiguous rows (inner == 1), n <= 1024: one warp per row (4-16 lanes a row for short rows), the row cached
//    in registers;
//  - contiguous rows, n > 1024: one block per row, cached in registers up to 16 values a thread, else three
//    passes over global memory;
//  - strided rows (inner > 1): 32 adjacent rows per (32, 8) block when inner >= 32, else one thread per row;
//    adjacent threads on adjacent columns (coalesced).
#include <algorithm>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/norm_reduce_common.cuh"

namespace kiln::cuda {

namespace {

using nrk::from_f;
using nrk::load_pack;
using nrk::store_pack;
using nrk::to_f;

// Element k of a row, x - m already computed: softmax or log-softmax given the row's sum s (and log s).
__device__ __forceinline__ float softmax_out(float xm, float inv_s, float log_s, bool log_kind) {
  return log_kind ? xm - log_s : expf(xm) * inv_s;
}

template <int LANES>
__device__ __forceinline__ float group_max(float v) {
#pragma unroll
  for (int o = LANES / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <int LANES>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// LANES lanes per row (32: a warp; 4/8/16 for short rows, several rows a warp) of n <= LANES * P * NP elements;
// P elements per access (n % P == 0 when P > 1). The row loop is uniform across the warp so the shuffles always
// see all 32 lanes; lanes whose row is past the end only skip their loads and stores.
template <class T, int P, int NP, int LANES>
__global__ void __launch_bounds__(128) softmax_warp_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                                           int n, bool log_kind) {
  constexpr int C = P * NP;
  constexpr int kGroups = 32 / LANES;
  const int lane = threadIdx.x & (LANES - 1);
  const int group = (threadIdx.x & 31) / LANES;
  const int64_t warps_per_block = blockDim.x >> 5;
  const int64_t warp = blockIdx.x * warps_per_block + (threadIdx.x >> 5);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps_per_block * kGroups;
  const int npacks = n / P;
  for (int64_t row0 = warp * kGroups; row0 < rows; row0 += stride) {
    const int64_t row = row0 + group;
    const bool live = row < rows;
    const T* xr = x + (live ? row : 0) * n;
    T* yr = y + (live ? row : 0) * n;
    float v[C];
    float m = -INFINITY;
#pragma unroll
    for (int k = 0; k < NP; ++k) {
      const int p = lane + k * LANES;
      float t[P];
      if (live && p < npacks) {
        load_pack<T, P>(xr, p, t);
      } else {
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] = -INFINITY;
      }
#pragma unroll
      for (int j = 0; j < P; ++j) {
        v[k * P + j] = t[j];
        m = fmaxf(m, t[j]);
      }
    }
    m = group_max<LANES>(m);
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < NP; ++k) {
      if (live && lane + k * LANES < npacks) {
#pragma unroll
        for (int j = 0; j < P; ++j) {
          v[k * P + j] -= m;
          s += expf(v[k * P + j]);
        }
      }
    }
    s = group_sum<LANES>(s);
    const float inv_s = 1.f / s, log_s = logf(s);
#pragma unroll
    for (int k = 0; k < NP; ++k) {
      const int p = lane + k * LANES;
      if (live && p < npacks) {
        float t[P];
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] = softmax_out(v[k * P + j], inv_s, log_s, log_kind);
        store_pack<T, P>(yr, p, t);
      }
    }
  }
}

// One block per row. Rows of up to blockDim.x * NP packs stay in registers; longer ones take three passes.
template <class T, int P, int NP>
__global__ void __launch_bounds__(1024) softmax_block_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                             int64_t rows, int64_t n, bool log_kind) {
  constexpr int C = P * NP;
  __shared__ float sh[32];
  const int64_t npacks = n / P;
  const int64_t nt = blockDim.x;
  const bool cached = npacks <= nt * NP;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    if (cached) {
      float v[C];
      float m = -INFINITY;
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        const int64_t p = threadIdx.x + k * nt;
        float t[P];
        if (p < npacks) {
          load_pack<T, P>(xr, p, t);
        } else {
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] = -INFINITY;
        }
#pragma unroll
        for (int j = 0; j < P; ++j) {
          v[k * P + j] = t[j];
          m = fmaxf(m, t[j]);
        }
      }
      m = nrk::block_max(m, sh);
      float s = 0.f;
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        if (threadIdx.x + k * nt < npacks) {
#pragma unroll
          for (int j = 0; j < P; ++j) {
            v[k * P + j] -= m;
            s += expf(v[k * P + j]);
          }
        }
      }
      s = nrk::block_sum(s, sh);
      const float inv_s = 1.f / s, log_s = logf(s);
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        const int64_t p = threadIdx.x + k * nt;
        if (p < npacks) {
          float t[P];
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] = softmax_out(v[k * P + j], inv_s, log_s, log_kind);
          store_pack<T, P>(yr, p, t);
        }
      }
    } else {
      float m = -INFINITY;
      for (int64_t p = threadIdx.x; p < npacks; p += nt) {
        float t[P];
        load_pack<T, P>(xr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) m = fmaxf(m, t[j]);
      }
      m = nrk::block_max(m, sh);
      float s = 0.f;
      for (int64_t p = threadIdx.x; p < npacks; p += nt) {
        float t[P];
        load_pack<T, P>(xr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) s += expf(t[j] - m);
      }
      s = nrk::block_sum(s, sh);
      const float inv_s = 1.f / s, log_s = logf(s);
      for (int64_t p = threadIdx.x; p < npacks; p += nt) {
        float t[P];
        load_pack<T, P>(xr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] = softmax_out(t[j] - m, inv_s, log_s, log_kind);
        store_pack<T, P>(yr, p, t);
      }
    }
  }
}

// One thread per (outer, inner) row whose elements lie `inner` apart.
template <class T>
__global__ void __launch_bounds__(256) softmax_strided_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                              int64_t outer, int64_t n, int64_t inner,
                                                              bool log_kind) {
  const int64_t total = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t o = idx / inner, i = idx - o * inner;
    const T* xr = x + o * n * inner + i;
    T* yr = y + o * n * inner + i;
    float m = -INFINITY;
    for (int64_t k = 0; k < n; ++k) m = fmaxf(m, to_f<T>(xr[k * inner]));
    float s = 0.f;
    for (int64_t k = 0; k < n; ++k) s += expf(to_f<T>(xr[k * inner]) - m);
    const float inv_s = 1.f / s, log_s = logf(s);
    for (int64_t k = 0; k < n; ++k)
      yr[k * inner] = from_f<T>(softmax_out(to_f<T>(xr[k * inner]) - m, inv_s, log_s, log_kind));
  }
}

// Strided rows with inner >= 32: a (32, 8) block takes 32 adjacent rows (columns of the [n, inner] plane) of one
// outer index; threadIdx.y strides the n elements and shared memory combines the 8 partial maxima and sums.
template <class T>
__global__ void __launch_bounds__(256) softmax_cols_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                           int64_t outer, int64_t n, int64_t inner, bool log_kind) {
  __shared__ float sh[8][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t tiles_inner = nrk::ceil_div(inner, 32);
  const int64_t tiles = outer * tiles_inner;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t o = t / tiles_inner;
    const int64_t i = (t - o * tiles_inner) * 32 + tx;
    const bool valid = i < inner;
    const int64_t base = o * n * inner + (valid ? i : 0);
    float m = -INFINITY;
    if (valid)
      for (int64_t k = ty; k < n; k += 8) m = fmaxf(m, to_f<T>(x[base + k * inner]));
    sh[ty][tx] = m;
    __syncthreads();
    m = sh[0][tx];
#pragma unroll
    for (int r = 1; r < 8; ++r) m = fmaxf(m, sh[r][tx]);
    __syncthreads();
    float s = 0.f;
    if (valid)
      for (int64_t k = ty; k < n; k += 8) s += expf(to_f<T>(x[base + k * inner]) - m);
    sh[ty][tx] = s;
    __syncthreads();
    s = sh[0][tx];
#pragma unroll
    for (int r = 1; r < 8; ++r) s += sh[r][tx];
    __syncthreads();
    const float inv_s = 1.f / s, log_s = logf(s);
    if (valid)
      for (int64_t k = ty; k < n; k += 8)
        y[base + k * inner] = from_f<T>(softmax_out(to_f<T>(x[base + k * inner]) - m, inv_s, log_s, log_kind));
  }
}

template <class T, int P, int NP, int LANES = 32>
void launch_warp_np(const T* x, T* y, int64_t rows, int n, bool log_kind, cudaStream_t st) {
  softmax_warp_kernel<T, P, NP, LANES>
      <<<nrk::grid_for(rows, 4 * (32 / LANES)), 128, 0, st>>>(x, y, rows, n, log_kind);
}

// Short rows (<= 16 packs) share a warp: LANES = 4, 8 or 16 lanes a row. Longer ones take a warp each and
// NP = the smallest power of two with 32 * P * NP >= n (n <= 1024, so P * NP <= 32).
template <class T, int P>
void launch_warp(const T* x, T* y, int64_t rows, int n, bool log_kind, cudaStream_t st) {
  const int npacks = n / P;
  if (npacks <= 4) return launch_warp_np<T, P, 1, 4>(x, y, rows, n, log_kind, st);
  if (npacks <= 8) return launch_warp_np<T, P, 1, 8>(x, y, rows, n, log_kind, st);
  if (npacks <= 16) return launch_warp_np<T, P, 1, 16>(x, y, rows, n, log_kind, st);
  const int per_lane = static_cast<int>(nrk::ceil_div(npacks, 32));
  if (per_lane <= 1) return launch_warp_np<T, P, 1>(x, y, rows, n, log_kind, st);
  if (per_lane <= 2) return launch_warp_np<T, P, 2>(x, y, rows, n, log_kind, st);
  if (per_lane <= 4) return launch_warp_np<T, P, 4>(x, y, rows, n, log_kind, st);
  if constexpr (P <= 4) {
    if (per_lane <= 8) return launch_warp_np<T, P, 8>(x, y, rows, n, log_kind, st);
  }
  if constexpr (P == 1) {
    if (per_lane <= 16) return launch_warp_np<T, 1, 16>(x, y, rows, n, log_kind, st);
    return launch_warp_np<T, 1, 32>(x, y, rows, n, log_kind, st);
  }
}

template <class T, int P>
void launch_block(const T* x, T* y, int64_t rows, int64_t n, bool log_kind, cudaStream_t st) {
  constexpr int NP = 16 / P;  // 16 cached floats a thread
  const int64_t npacks = n / P;
  int64_t threads = nrk::ceil_div(nrk::ceil_div(npacks, NP), 32) * 32;
  threads = std::min<int64_t>(1024, std::max<int64_t>(128, threads));
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(rows, int64_t{1} << 20));
  softmax_block_kernel<T, P, NP><<<grid, static_cast<unsigned>(threads), 0, st>>>(x, y, rows, n, log_kind);
}

template <class T>
void launch_softmax(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log_kind, cudaStream_t st) {
  if (inner >= 32) {
    const int64_t tiles = outer * nrk::ceil_div(inner, 32);
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(tiles, int64_t{1} << 20));
    softmax_cols_kernel<T><<<grid, dim3(32, 8), 0, st>>>(x, y, outer, n, inner, log_kind);
    return;
  }
  if (inner != 1) {
    softmax_strided_kernel<T><<<nrk::grid_for(outer * inner, 256), 256, 0, st>>>(x, y, outer, n, inner, log_kind);
    return;
  }
  constexpr int P = 16 / sizeof(T);
  const bool vec = n % P == 0 && nrk::aligned16(x) && nrk::aligned16(y);
  if (n <= 1024) {
    if (vec)
      launch_warp<T, P>(x, y, outer, static_cast<int>(n), log_kind, st);
    else
      launch_warp<T, 1>(x, y, outer, static_cast<int>(n), log_kind, st);
  } else {
    if (vec)
      launch_block<T, P>(x, y, outer, n, log_kind, st);
    else
      launch_block<T, 1>(x, y, outer, n, log_kind, st);
  }
}

Status run_softmax(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) return ctx.error("needs an input of rank >= 1");
  int64_t axis = ctx.node().attr_int("axis", ctx.opset() < 13 ? 1 : -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  if (x.numel() == 0) return Status();
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dims[i];
  if (ctx.opset() < 13) {
    for (int64_t i = axis; i < rank; ++i) n *= x.dims[i];
  } else {
    n = x.dims[axis];
    for (int64_t i = axis + 1; i < rank; ++i) inner *= x.dims[i];
  }
  const bool log_kind = ctx.node().op_type == "LogSoftmax";
  const bool ok = nrk::dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_softmax<T>(x.ptr<const T>(), y.ptr<T>(), outer, n, inner, log_kind, ctx.stream());
  });
  if (!ok) return ctx.error("dtype {} is not supported", dtype_name(x.dtype));
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

}  // namespace

void register_cuda_softmax(KernelTable& t) {
  t.add({"Softmax", run_softmax, floats_only});
  t.add({"LogSoftmax", run_softmax, floats_only});
}

}  // namespace kiln::cuda
