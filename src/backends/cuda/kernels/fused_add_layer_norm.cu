// FusedAddLayerNorm: S = X + R and Y = LayerNorm(S) * gamma + beta over the last dim, in one pass over X and
// R. X, R viewed as [rows, d]; each element's sum is rounded to T (what the unfused Add stored) before it is
// written as S and before the statistics read it, so Y is the norm of the S this node writes, as in the graph
// the pass fused. Statistics in f32, two-pass (mean, then the squared deviations) from registers when the row
// fits, around x[0] + r[0] as the LayerNormalization kernel does (a large common offset costs no precision).
//  - d <= 1024: one warp per row (4 rows a block);
//  - d > 1024: one block per row, up to 16 cached values a thread, else three passes over X and R (the
//    sums are recomputed bit for bit, so every pass sees the same S).
// gamma/beta: [d] (or [1, …, d]) or one value, of any float dtype; [d] of X's dtype is read in 16-byte packs.
#include <algorithm>
#include <type_traits>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/norm_reduce_common.cuh"

namespace kiln::cuda {

namespace {

using nrk::ceil_div;

struct AddNormArgs {
  int64_t rows = 0, d = 0;
  float eps = 1e-5f;
  const void* gamma = nullptr;
  int gamma_code = nrk::kCodeF32;
  bool gamma_scalar = false;
  const void* beta = nullptr;  // optional
  int beta_code = nrk::kCodeF32;
  bool beta_scalar = false;
  bool vec_params = false;  // gamma (and beta) are [d] of T, aligned for the pack width
};

// x + r rounded to T, back in f32.
template <class T>
__device__ __forceinline__ float rounded_sum(float x, float r) {
  return nrk::to_f<T>(nrk::from_f<T>(x + r));
}

// P sums of pack p: the rounded S values.
template <class T, int P>
__device__ __forceinline__ void load_sum_pack(const T* xr, const T* rr, int64_t p, float (&t)[P]) {
  float a[P], b[P];
  nrk::load_pack<T, P>(xr, p, a);
  nrk::load_pack<T, P>(rr, p, b);
#pragma unroll
  for (int j = 0; j < P; ++j) t[j] = rounded_sum<T>(a[j], b[j]);
}

__device__ __forceinline__ float param_at(const void* p, int code, bool scalar, int64_t e) {
  return nrk::load_any(p, code, scalar ? 0 : e);
}

// t holds the P centred values (s - shift) of pack p; on return, the outputs y.
template <class T, int P>
__device__ __forceinline__ void apply_pack(const AddNormArgs& a, int64_t p, float mean, float inv,
                                           float (&t)[P]) {
  float g[P], b[P];
  if (a.vec_params) {
    nrk::load_pack<T, P>(static_cast<const T*>(a.gamma), p, g);
    if (a.beta) {
      nrk::load_pack<T, P>(static_cast<const T*>(a.beta), p, b);
    } else {
#pragma unroll
      for (int j = 0; j < P; ++j) b[j] = 0.f;
    }
  } else {
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const int64_t e = p * P + j;
      g[j] = param_at(a.gamma, a.gamma_code, a.gamma_scalar, e);
      b[j] = a.beta ? param_at(a.beta, a.beta_code, a.beta_scalar, e) : 0.f;
    }
  }
#pragma unroll
  for (int j = 0; j < P; ++j) t[j] = (t[j] - mean) * inv * g[j] + b[j];
}

// One warp per row of d <= 32 * P * NP elements (d % P == 0 when P > 1). s may be null (no S output).
template <class T, int P, int NP>
__global__ void __launch_bounds__(128)
    add_norm_warp_kernel(const T* __restrict__ x, const T* __restrict__ r, T* __restrict__ y,
                         T* __restrict__ s, AddNormArgs a) {
  constexpr int C = P * NP;
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x >> 5;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps_per_block;
  const int npacks = static_cast<int>(a.d / P);
  const float df = static_cast<float>(a.d);
  for (int64_t row = blockIdx.x * warps_per_block + (threadIdx.x >> 5); row < a.rows; row += stride) {
    const T* xr = x + row * a.d;
    const T* rr = r + row * a.d;
    const float shift = rounded_sum<T>(nrk::to_f<T>(xr[0]), nrk::to_f<T>(rr[0]));
    float v[C];
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < NP; ++k) {
      const int p = lane + k * 32;
      float t[P];
      if (p < npacks) {
        load_sum_pack<T, P>(xr, rr, p, t);
        if (s) nrk::store_pack<T, P>(s + row * a.d, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] -= shift;
      } else {
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] = 0.f;
      }
#pragma unroll
      for (int j = 0; j < P; ++j) {
        v[k * P + j] = t[j];
        sum += t[j];
      }
    }
    const float mean = nrk::warp_sum(sum) / df;
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < NP; ++k) {
      if (lane + k * 32 < npacks) {
#pragma unroll
        for (int j = 0; j < P; ++j) {
          const float dv = v[k * P + j] - mean;
          q += dv * dv;
        }
      }
    }
    const float inv = 1.f / sqrtf(nrk::warp_sum(q) / df + a.eps);
    T* yr = y + row * a.d;
#pragma unroll
    for (int k = 0; k < NP; ++k) {
      const int p = lane + k * 32;
      if (p < npacks) {
        float t[P];
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] = v[k * P + j];
        apply_pack<T, P>(a, p, mean, inv, t);
        nrk::store_pack<T, P>(yr, p, t);
      }
    }
  }
}

// One block per row; rows of up to blockDim.x * NP packs stay in registers, longer ones are read three times.
template <class T, int P, int NP>
__global__ void __launch_bounds__(1024)
    add_norm_block_kernel(const T* __restrict__ x, const T* __restrict__ r, T* __restrict__ y,
                          T* __restrict__ s, AddNormArgs a) {
  constexpr int C = P * NP;
  __shared__ float sh[32];
  const int64_t npacks = a.d / P;
  const int64_t nt = blockDim.x;
  const bool cached = npacks <= nt * NP;
  const float df = static_cast<float>(a.d);
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* xr = x + row * a.d;
    const T* rr = r + row * a.d;
    T* yr = y + row * a.d;
    T* sr = s ? s + row * a.d : nullptr;
    const float shift = rounded_sum<T>(nrk::to_f<T>(xr[0]), nrk::to_f<T>(rr[0]));
    if (cached) {
      float v[C];
      float sum = 0.f;
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        const int64_t p = threadIdx.x + k * nt;
        float t[P];
        if (p < npacks) {
          load_sum_pack<T, P>(xr, rr, p, t);
          if (sr) nrk::store_pack<T, P>(sr, p, t);
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] -= shift;
        } else {
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] = 0.f;
        }
#pragma unroll
        for (int j = 0; j < P; ++j) {
          v[k * P + j] = t[j];
          sum += t[j];
        }
      }
      const float mean = nrk::block_sum(sum, sh) / df;
      float q = 0.f;
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        if (threadIdx.x + k * nt < npacks) {
#pragma unroll
          for (int j = 0; j < P; ++j) {
            const float dv = v[k * P + j] - mean;
            q += dv * dv;
          }
        }
      }
      const float inv = 1.f / sqrtf(nrk::block_sum(q, sh) / df + a.eps);
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        const int64_t p = threadIdx.x + k * nt;
        if (p < npacks) {
          float t[P];
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] = v[k * P + j];
          apply_pack<T, P>(a, p, mean, inv, t);
          nrk::store_pack<T, P>(yr, p, t);
        }
      }
    } else {
      float sum = 0.f;
      for (int64_t p = threadIdx.x; p < npacks; p += nt) {
        float t[P];
        load_sum_pack<T, P>(xr, rr, p, t);
        if (sr) nrk::store_pack<T, P>(sr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) sum += t[j] - shift;
      }
      const float mean = nrk::block_sum(sum, sh) / df;
      float q = 0.f;
      for (int64_t p = threadIdx.x; p < npacks; p += nt) {
        float t[P];
        load_sum_pack<T, P>(xr, rr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) {
          const float dv = t[j] - shift - mean;
          q += dv * dv;
        }
      }
      const float inv = 1.f / sqrtf(nrk::block_sum(q, sh) / df + a.eps);
      for (int64_t p = threadIdx.x; p < npacks; p += nt) {
        float t[P];
        load_sum_pack<T, P>(xr, rr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] -= shift;
        apply_pack<T, P>(a, p, mean, inv, t);
        nrk::store_pack<T, P>(yr, p, t);
      }
    }
  }
}

template <class T, int P, int NP>
void launch_warp_np(const T* x, const T* r, T* y, T* s, const AddNormArgs& a, cudaStream_t st) {
  add_norm_warp_kernel<T, P, NP><<<nrk::grid_for(a.rows, 4), 128, 0, st>>>(x, r, y, s, a);
}

// NP: the smallest power of two with 32 * P * NP >= d (d <= 1024, so P * NP <= 32).
template <class T, int P>
void launch_warp(const T* x, const T* r, T* y, T* s, const AddNormArgs& a, cudaStream_t st) {
  const int64_t per_lane = ceil_div(ceil_div(a.d, P), 32);
  if (per_lane <= 1) return launch_warp_np<T, P, 1>(x, r, y, s, a, st);
  if (per_lane <= 2) return launch_warp_np<T, P, 2>(x, r, y, s, a, st);
  if (per_lane <= 4) return launch_warp_np<T, P, 4>(x, r, y, s, a, st);
  if constexpr (P <= 4) {
    if (per_lane <= 8) return launch_warp_np<T, P, 8>(x, r, y, s, a, st);
  }
  if constexpr (P <= 2) {
    if (per_lane <= 16) return launch_warp_np<T, P, 16>(x, r, y, s, a, st);
  }
  if constexpr (P == 1) return launch_warp_np<T, 1, 32>(x, r, y, s, a, st);
}

template <class T, int P>
void launch_block(const T* x, const T* r, T* y, T* s, const AddNormArgs& a, cudaStream_t st) {
  constexpr int NP = 16 / P;
  const int64_t npacks = a.d / P;
  int64_t threads = ceil_div(ceil_div(npacks, NP), 32) * 32;
  threads = std::min<int64_t>(1024, std::max<int64_t>(128, threads));
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(a.rows, int64_t{1} << 20));
  add_norm_block_kernel<T, P, NP><<<grid, static_cast<unsigned>(threads), 0, st>>>(x, r, y, s, a);
}

template <class T>
constexpr int kCodeOf = std::is_same_v<T, __half>
                            ? nrk::kCodeF16
                            : (std::is_same_v<T, __nv_bfloat16> ? nrk::kCodeBF16 : nrk::kCodeF32);

template <class T>
void launch_add_norm(const T* x, const T* r, T* y, T* s, AddNormArgs a, cudaStream_t st) {
  constexpr int P = 16 / sizeof(T);
  const bool vec = a.d % P == 0 && nrk::aligned16(x) && nrk::aligned16(r) && nrk::aligned16(y) &&
                   (!s || nrk::aligned16(s));
  const auto packable = [&](const void* p, int code, bool scalar) {
    return !scalar && code == kCodeOf<T> && (!vec || nrk::aligned16(p));
  };
  a.vec_params = packable(a.gamma, a.gamma_code, a.gamma_scalar) &&
                 (!a.beta || packable(a.beta, a.beta_code, a.beta_scalar));
  if (a.d <= 1024) {
    if (vec)
      launch_warp<T, P>(x, r, y, s, a, st);
    else
      launch_warp<T, 1>(x, r, y, s, a, st);
  } else {
    if (vec)
      launch_block<T, P>(x, r, y, s, a, st);
    else
      launch_block<T, 1>(x, r, y, s, a, st);
  }
}

bool supports_add_norm(const ir::Node& node, const std::vector<DType>& dts) {
  if (dts.size() < 3 || !nrk::is_cuda_float(dts[0]) || dts[1] != dts[0]) return false;
  for (size_t i = 2; i < dts.size(); ++i)
    if (dts[i] != DType::kUndefined && !nrk::is_cuda_float(dts[i])) return false;
  return true;
}

// A gamma/beta of d values ([d] or [1, …, 1, d]) or of one value; false for anything else.
bool param_shape_ok(const DeviceTensor& t, int64_t d, bool* scalar) {
  *scalar = t.numel() == 1 && d != 1;
  return t.numel() == d || t.numel() == 1;
}

Status run_add_norm(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& r = ctx.input(1);
  if (x.rank() == 0) return ctx.error("needs an input X of rank >= 1");
  if (r.dims != x.dims || r.dtype != x.dtype)
    return ctx.error("the residual R {}{} must have X's dtype and shape {}{}", dtype_name(r.dtype),
                     dims_to_string(r.dims), dtype_name(x.dtype), dims_to_string(x.dims));
  AddNormArgs a;
  a.d = x.dims.back();
  a.rows = a.d == 0 ? 0 : x.numel() / a.d;
  a.eps = ctx.node().attr_float("epsilon", 1e-5f);
  const DeviceTensor& gamma = ctx.input(2);
  if (!param_shape_ok(gamma, a.d, &a.gamma_scalar))
    return ctx.error("gamma {} must have {} elements (X's last dim) or one", dims_to_string(gamma.dims), a.d);
  a.gamma = gamma.data;
  a.gamma_code = nrk::fcode(gamma.dtype);
  if (ctx.has_input(3)) {
    const DeviceTensor& beta = ctx.input(3);
    if (!param_shape_ok(beta, a.d, &a.beta_scalar))
      return ctx.error("beta {} must have {} elements (X's last dim) or one", dims_to_string(beta.dims), a.d);
    a.beta = beta.data;
    a.beta_code = nrk::fcode(beta.dtype);
  }
  DeviceTensor& y = ctx.output(0);
  DeviceTensor* s = ctx.has_output(1) && ctx.num_outputs() > 1 ? &ctx.output(1) : nullptr;
  if (y.numel() != x.numel() || (s && s->numel() != x.numel()))
    return ctx.error("outputs must have X's {} elements", x.numel());
  if (a.rows == 0) return Status();  // empty X: nothing to write
  const bool ok = nrk::dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_add_norm<T>(x.ptr<const T>(), r.ptr<const T>(), y.ptr<T>(), s ? s->ptr<T>() : nullptr, a,
                       ctx.stream());
  });
  if (!ok) return ctx.error("dtype {} is not supported (f32, f16, bf16)", dtype_name(x.dtype));
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

}  // namespace

void register_cuda_fused_add_layer_norm(KernelTable& t) {
  t.add({"FusedAddLayerNorm", run_add_norm, supports_add_norm});
}

}  // namespace kiln::cuda
