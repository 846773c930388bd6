// Row normalization shared by LayerNormalization, RMSNormalization (layer_norm.cu), InstanceNormalization
// (batch_norm.cu) and FusedAddLayerNorm (fused_add_layer_norm.cu): X viewed as [rows, d], each row normalized
// with f32 statistics (two-pass mean and variance from registers when the row fits, else from global memory),
// then scaled and shifted by parameters of any float dtype broadcast to the row.
// With kAdd (FusedAddLayerNorm only, a template flag so the other ops' kernels are unchanged) the row is
// S = X + residual, each sum rounded to T (what the unfused Add stored) before it is stored to sum_out and
// before the statistics read it, so Y is the norm of the S the node writes; longer rows re-add bit for bit
// each pass.
//  - d <= 1024: one warp per row (4 rows a block);
//  - d > 1024: one block per row, up to 16 cached values a thread, else three passes over global memory.
#pragma once
#include <algorithm>
#include <type_traits>
#include <vector>

#include "backends/cuda/kernels/norm_reduce_common.cuh"

namespace kiln::cuda::nrk {

// Where element j of row `row` finds its parameter (scale or bias).
struct ParamMap {
  enum Mode : int { kFull = 0, kScalar = 1, kPerRow = 2, kBroadcast = 3 };
  int mode = kFull;
  int nd = 0;             // kBroadcast: rank of the normalized dims
  int64_t channels = 1;   // kPerRow: parameter index = row % channels
  int64_t dims[8] = {};   // kBroadcast: normalized dims
  int64_t strides[8] = {};  // kBroadcast: parameter strides per normalized dim (0 where broadcast)

  __device__ __forceinline__ int64_t index(int64_t row, int64_t j) const {
    if (mode == kFull) return j;
    if (mode == kScalar) return 0;
    if (mode == kPerRow) return row % channels;
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t q = j / dims[d];
      off += (j - q * dims[d]) * strides[d];
      j = q;
    }
    return off;
  }
};

struct NormArgs {
  int64_t rows = 0, d = 0;
  float eps = 1e-5f;
  bool rms = false;  // RMSNormalization: no mean subtraction, no bias
  const void* scale = nullptr;
  int scale_code = kCodeF32;
  ParamMap smap;
  const void* bias = nullptr;  // optional
  int bias_code = kCodeF32;
  ParamMap bmap;
  void* mean_out = nullptr;  // optional, one value per row
  void* inv_out = nullptr;   // optional, one value per row
  int stat_code = kCodeF32;
  // Set by launch_norm: parameters that are one value per row (scalar or per channel) are read once a row;
  // full-length parameters of X's dtype (aligned for the pack width) are read as packs.
  bool scale_per_row = false, bias_per_row = false, vec_params = false;
  // kAdd only (see the top of the file): the residual, of X's dtype and shape, and the optional S output.
  const void* residual = nullptr;
  void* sum_out = nullptr;
};

// A parameter of dims `pdims` broadcast one-way (right-aligned, extra leading 1s allowed) to `norm_dims`.
inline bool make_param_map(const std::vector<int64_t>& pdims, const std::vector<int64_t>& norm_dims, ParamMap* m) {
  int64_t pn = 1, d = 1;
  for (int64_t v : pdims) pn *= v;
  for (int64_t v : norm_dims) d *= v;
  *m = ParamMap();
  if (pn == d) {
    m->mode = ParamMap::kFull;
    return true;
  }
  if (pn == 1) {
    m->mode = ParamMap::kScalar;
    return true;
  }
  std::vector<int64_t> pd = pdims;
  while (pd.size() > norm_dims.size() && pd.front() == 1) pd.erase(pd.begin());
  if (norm_dims.size() > 8 || pd.size() > norm_dims.size()) return false;
  std::vector<int64_t> pstr(pd.size(), 1);
  for (int64_t i = static_cast<int64_t>(pd.size()) - 2; i >= 0; --i) pstr[i] = pstr[i + 1] * pd[i + 1];
  m->mode = ParamMap::kBroadcast;
  m->nd = static_cast<int>(norm_dims.size());
  const size_t off = norm_dims.size() - pd.size();
  for (size_t i = 0; i < norm_dims.size(); ++i) {
    m->dims[i] = norm_dims[i];
    if (i < off) {
      m->strides[i] = 0;
    } else {
      const int64_t pv = pd[i - off];
      if (pv != 1 && pv != norm_dims[i]) return false;
      m->strides[i] = pv == 1 ? 0 : pstr[i - off];
    }
  }
  return true;
}

namespace {

// Scale and bias for the P elements of pack p of row `row` (s_row/b_row: the row's values when per row).
template <class T, int P>
__device__ __forceinline__ void norm_params(const NormArgs& a, int64_t row, int64_t p, float s_row, float b_row,
                                            float (&sc)[P], float (&bi)[P]) {
  if (a.vec_params) {
    load_pack<T, P>(static_cast<const T*>(a.scale), p, sc);
    if (a.bias) {
      load_pack<T, P>(static_cast<const T*>(a.bias), p, bi);
    } else {
#pragma unroll
      for (int j = 0; j < P; ++j) bi[j] = 0.f;
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int64_t e = p * P + j;
    sc[j] = a.scale_per_row ? s_row : load_any(a.scale, a.scale_code, a.smap.index(row, e));
    bi[j] = !a.bias ? 0.f : (a.bias_per_row ? b_row : load_any(a.bias, a.bias_code, a.bmap.index(row, e)));
  }
}

// y = (x - mean) * inv * scale + bias for one pack, as the reference orders it.
template <class T, int P>
__device__ __forceinline__ void norm_apply_pack(const NormArgs& a, int64_t row, int64_t p, float s_row, float b_row,
                                                float mean, float inv, float (&t)[P]) {
  float sc[P], bi[P];
  norm_params<T, P>(a, row, p, s_row, b_row, sc, bi);
#pragma unroll
  for (int j = 0; j < P; ++j) t[j] = (t[j] - mean) * inv * sc[j] + bi[j];
}

__device__ __forceinline__ float norm_row_scale(const NormArgs& a, int64_t row) {
  return a.scale_per_row ? load_any(a.scale, a.scale_code, a.smap.index(row, 0)) : 0.f;
}
__device__ __forceinline__ float norm_row_bias(const NormArgs& a, int64_t row) {
  return a.bias && a.bias_per_row ? load_any(a.bias, a.bias_code, a.bmap.index(row, 0)) : 0.f;
}

__device__ __forceinline__ void norm_store_stats(const NormArgs& a, int64_t row, float mean, float inv) {
  if (a.mean_out) store_any(a.mean_out, a.stat_code, row, mean);
  if (a.inv_out) store_any(a.inv_out, a.stat_code, row, inv);
}

// x + r rounded to T, back in f32.
template <class T>
__device__ __forceinline__ float rounded_sum(float x, float r) {
  return to_f<T>(from_f<T>(x + r));
}

// The row's first value, around which LayerNorm centres it: x[0], or with kAdd the rounded x[0] + r[0].
template <class T, bool kAdd>
__device__ __forceinline__ float norm_first(const T* xr, const T* rr) {
  if constexpr (kAdd)
    return rounded_sum<T>(to_f<T>(xr[0]), to_f<T>(__ldg(rr)));
  else
    return to_f<T>(xr[0]);
}

// load_pack through the read-only (non-coherent) cache, as loads through a const __restrict__ kernel
// parameter compile: the residual reaches the kernel inside NormArgs, where the compiler cannot tell it from
// sum_out.
template <class T, int P>
__device__ __forceinline__ void load_pack_ro(const T* base, int64_t pack_index, float (&out)[P]) {
  constexpr size_t kBytes = sizeof(T) * P;
  using W = std::conditional_t<
      kBytes == 16, uint4,
      std::conditional_t<kBytes == 8, uint2, std::conditional_t<kBytes == 4, unsigned, unsigned short>>>;
  static_assert(sizeof(W) == kBytes, "no read-only load of this pack width");
  union {
    W w;
    Pack<T, P> p;
  } u;
  u.w = __ldg(reinterpret_cast<const W*>(base) + pack_index);
#pragma unroll
  for (int j = 0; j < P; ++j) out[j] = to_f<T>(u.p.v[j]);
}

// The P values of pack p of the row: X, or with kAdd the rounded sums, also stored to sr when it is set.
template <class T, int P, bool kAdd>
__device__ __forceinline__ void norm_load_pack(const T* xr, const T* rr, T* sr, int64_t p, float (&t)[P]) {
  if constexpr (kAdd) {
    float b[P];
    load_pack<T, P>(xr, p, t);
    load_pack_ro<T, P>(rr, p, b);
#pragma unroll
    for (int j = 0; j < P; ++j) t[j] = rounded_sum<T>(t[j], b[j]);
    if (sr) store_pack<T, P>(sr, p, t);
  } else {
    load_pack<T, P>(xr, p, t);
  }
}

// Row `row` of the residual and of sum_out (null when absent or without kAdd).
template <class T, bool kAdd>
__device__ __forceinline__ const T* norm_residual_row(const NormArgs& a, int64_t row) {
  return kAdd ? static_cast<const T*>(a.residual) + row * a.d : nullptr;
}
template <class T, bool kAdd>
__device__ __forceinline__ T* norm_sum_row(const NormArgs& a, int64_t row) {
  return kAdd && a.sum_out ? static_cast<T*>(a.sum_out) + row * a.d : nullptr;
}

// One warp per row of d <= 32 * P * NP elements (d % P == 0 when P > 1).
template <class T, int P, int NP, bool kAdd>
__global__ void __launch_bounds__(128) norm_warp_kernel(const T* __restrict__ x, T* __restrict__ y, NormArgs a) {
  constexpr int C = P * NP;
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x >> 5;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps_per_block;
  const int npacks = static_cast<int>(a.d / P);
  const float df = static_cast<float>(a.d);
  for (int64_t row = blockIdx.x * warps_per_block + (threadIdx.x >> 5); row < a.rows; row += stride) {
    const T* xr = x + row * a.d;
    const T* rr = norm_residual_row<T, kAdd>(a, row);
    T* sr = norm_sum_row<T, kAdd>(a, row);
    // LayerNorm works on x - x[0]: exact for nearby values, so a large common offset costs no precision in the
    // f32 mean (the reference computes in double). RMSNorm needs the raw values.
    const float shift = (a.rms || a.d == 0) ? 0.f : norm_first<T, kAdd>(xr, rr);
    const float s_row = norm_row_scale(a, row), b_row = norm_row_bias(a, row);
    T* yr = y + row * a.d;
    float v[C];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < NP; ++k) {
      const int p = lane + k * 32;
      float t[P];
      if (p < npacks) {
        norm_load_pack<T, P, kAdd>(xr, rr, sr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] -= shift;
      } else {
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] = 0.f;
      }
#pragma unroll
      for (int j = 0; j < P; ++j) {
        v[k * P + j] = t[j];
        s += a.rms ? t[j] * t[j] : t[j];
      }
    }
    s = warp_sum(s);
    float mean = 0.f, inv;
    if (a.rms) {
      inv = 1.f / sqrtf(s / df + a.eps);
    } else {
      mean = s / df;
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
      q = warp_sum(q);
      inv = 1.f / sqrtf(q / df + a.eps);
    }
    if (lane == 0) norm_store_stats(a, row, shift + mean, inv);
#pragma unroll
    for (int k = 0; k < NP; ++k) {
      const int p = lane + k * 32;
      if (p < npacks) {
        float t[P];
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] = v[k * P + j];
        norm_apply_pack<T, P>(a, row, p, s_row, b_row, mean, inv, t);
        store_pack<T, P>(yr, p, t);
      }
    }
  }
}

// One block per row; rows of up to blockDim.x * NP packs stay in registers, longer ones are read three times.
template <class T, int P, int NP, bool kAdd>
__global__ void __launch_bounds__(1024) norm_block_kernel(const T* __restrict__ x, T* __restrict__ y, NormArgs a) {
  constexpr int C = P * NP;
  __shared__ float sh[32];
  const int64_t npacks = a.d / P;
  const int64_t nt = blockDim.x;
  const bool cached = npacks <= nt * NP;
  const float df = static_cast<float>(a.d);
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* xr = x + row * a.d;
    const T* rr = norm_residual_row<T, kAdd>(a, row);
    T* sr = norm_sum_row<T, kAdd>(a, row);
    // LayerNorm works on x - x[0]: exact for nearby values, so a large common offset costs no precision in the
    // f32 mean (the reference computes in double). RMSNorm needs the raw values.
    const float shift = (a.rms || a.d == 0) ? 0.f : norm_first<T, kAdd>(xr, rr);
    const float s_row = norm_row_scale(a, row), b_row = norm_row_bias(a, row);
    T* yr = y + row * a.d;
    float mean = 0.f, inv;
    if (cached) {
      float v[C];
      float s = 0.f;
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        const int64_t p = threadIdx.x + k * nt;
        float t[P];
        if (p < npacks) {
          norm_load_pack<T, P, kAdd>(xr, rr, sr, p, t);
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] -= shift;
        } else {
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] = 0.f;
        }
#pragma unroll
        for (int j = 0; j < P; ++j) {
          v[k * P + j] = t[j];
          s += a.rms ? t[j] * t[j] : t[j];
        }
      }
      s = block_sum(s, sh);
      if (a.rms) {
        inv = 1.f / sqrtf(s / df + a.eps);
      } else {
        mean = s / df;
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
        q = block_sum(q, sh);
        inv = 1.f / sqrtf(q / df + a.eps);
      }
      if (threadIdx.x == 0) norm_store_stats(a, row, shift + mean, inv);
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        const int64_t p = threadIdx.x + k * nt;
        if (p < npacks) {
          float t[P];
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] = v[k * P + j];
          norm_apply_pack<T, P>(a, row, p, s_row, b_row, mean, inv, t);
          store_pack<T, P>(yr, p, t);
        }
      }
    } else {
      float s = 0.f;
      for (int64_t p = threadIdx.x; p < npacks; p += nt) {
        float t[P];
        norm_load_pack<T, P, kAdd>(xr, rr, sr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] -= shift;
#pragma unroll
        for (int j = 0; j < P; ++j) s += a.rms ? t[j] * t[j] : t[j];
      }
      s = block_sum(s, sh);
      if (a.rms) {
        inv = 1.f / sqrtf(s / df + a.eps);
      } else {
        mean = s / df;
        float q = 0.f;
        for (int64_t p = threadIdx.x; p < npacks; p += nt) {
          float t[P];
          norm_load_pack<T, P, kAdd>(xr, rr, nullptr, p, t);
#pragma unroll
          for (int j = 0; j < P; ++j) t[j] -= shift;
#pragma unroll
          for (int j = 0; j < P; ++j) {
            const float dv = t[j] - mean;
            q += dv * dv;
          }
        }
        q = block_sum(q, sh);
        inv = 1.f / sqrtf(q / df + a.eps);
      }
      if (threadIdx.x == 0) norm_store_stats(a, row, shift + mean, inv);
      for (int64_t p = threadIdx.x; p < npacks; p += nt) {
        float t[P];
        norm_load_pack<T, P, kAdd>(xr, rr, nullptr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) t[j] -= shift;
        norm_apply_pack<T, P>(a, row, p, s_row, b_row, mean, inv, t);
        store_pack<T, P>(yr, p, t);
      }
    }
  }
}

template <class T, int P, int NP, bool kAdd>
void launch_norm_warp_np(const T* x, T* y, const NormArgs& a, cudaStream_t st) {
  norm_warp_kernel<T, P, NP, kAdd><<<grid_for(a.rows, 4), 128, 0, st>>>(x, y, a);
}

// NP: the smallest power of two with 32 * P * NP >= d (d <= 1024, so P * NP <= 32).
template <class T, int P, bool kAdd>
void launch_norm_warp(const T* x, T* y, const NormArgs& a, cudaStream_t st) {
  const int64_t per_lane = ceil_div(ceil_div(a.d, P), 32);
  if (per_lane <= 1) return launch_norm_warp_np<T, P, 1, kAdd>(x, y, a, st);
  if (per_lane <= 2) return launch_norm_warp_np<T, P, 2, kAdd>(x, y, a, st);
  if (per_lane <= 4) return launch_norm_warp_np<T, P, 4, kAdd>(x, y, a, st);
  if constexpr (P <= 4) {
    if (per_lane <= 8) return launch_norm_warp_np<T, P, 8, kAdd>(x, y, a, st);
  }
  if constexpr (P == 1) {
    if (per_lane <= 16) return launch_norm_warp_np<T, 1, 16, kAdd>(x, y, a, st);
    return launch_norm_warp_np<T, 1, 32, kAdd>(x, y, a, st);
  }
}

template <class T, int P, bool kAdd>
void launch_norm_block(const T* x, T* y, const NormArgs& a, cudaStream_t st) {
  constexpr int NP = 16 / P;
  const int64_t npacks = a.d / P;
  int64_t threads = ceil_div(ceil_div(npacks, NP), 32) * 32;
  threads = std::min<int64_t>(1024, std::max<int64_t>(128, threads));
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(a.rows, int64_t{1} << 20));
  norm_block_kernel<T, P, NP, kAdd><<<grid, static_cast<unsigned>(threads), 0, st>>>(x, y, a);
}

template <class T>
constexpr int kCodeOf = std::is_same_v<T, __half> ? kCodeF16 : (std::is_same_v<T, __nv_bfloat16> ? kCodeBF16 : kCodeF32);

// Launches nothing when there are no rows; with d == 0 only the statistics (NaN, as 0/0) are written.
// kAdd: args.residual must be set (sum_out optional); packs need them aligned too.
template <class T, bool kAdd = false>
void launch_norm(const T* x, T* y, const NormArgs& args, cudaStream_t st) {
  if (args.rows <= 0) return;
  constexpr int P = 16 / sizeof(T);
  bool vec = args.d % P == 0 && aligned16(x) && aligned16(y);
  if constexpr (kAdd) vec = vec && aligned16(args.residual) && (!args.sum_out || aligned16(args.sum_out));
  NormArgs a = args;
  const auto per_row = [](const ParamMap& m) { return m.mode == ParamMap::kScalar || m.mode == ParamMap::kPerRow; };
  const auto packable = [&](const void* p, int code, const ParamMap& m) {
    return m.mode == ParamMap::kFull && code == kCodeOf<T> && (!vec || aligned16(p));
  };
  a.scale_per_row = per_row(a.smap);
  a.bias_per_row = a.bias && per_row(a.bmap);
  a.vec_params = packable(a.scale, a.scale_code, a.smap) && (!a.bias || packable(a.bias, a.bias_code, a.bmap));
  if (a.d <= 1024) {
    if (vec)
      launch_norm_warp<T, P, kAdd>(x, y, a, st);
    else
      launch_norm_warp<T, 1, kAdd>(x, y, a, st);
  } else {
    if (vec)
      launch_norm_block<T, P, kAdd>(x, y, a, st);
    else
      launch_norm_block<T, 1, kAdd>(x, y, a, st);
  }
}

}  // namespace

}  // namespace kiln::cuda::nrk
