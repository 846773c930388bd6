// Shared pieces of the elementwise CUDA kernels (unary, binary, where, cast/expand): storage <-> compute
// conversion, dtype dispatch, broadcast layouts collapsed to the fewest dims, fast index division, and the
// vectorized flat unary launcher.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda::ew {

constexpr int kMaxRank = 8;          // dims after collapsing
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;  // grid-stride loops beyond this
constexpr int64_t kMax32 = (int64_t{1} << 31) - 1;

template <class T>
struct Tag {
  using type = T;
};

// Compute type of a storage type: f16/bf16 compute in f32, everything else in itself.
template <class T>
struct Num {
  using C = T;
  __device__ __forceinline__ static C load(T v) { return v; }
  __device__ __forceinline__ static T store(C v) { return v; }
};
template <>
struct Num<__half> {
  using C = float;
  __device__ __forceinline__ static float load(__half v) { return __half2float(v); }
  __device__ __forceinline__ static __half store(float v) { return __float2half_rn(v); }
};
template <>
struct Num<__nv_bfloat16> {
  using C = float;
  __device__ __forceinline__ static float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ __forceinline__ static __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

inline bool is_float_dt(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }
inline bool is_int_dt(DType d) { return d == DType::kI32 || d == DType::kI64; }
inline bool is_numeric_dt(DType d) { return is_float_dt(d) || is_int_dt(d); }

// Dtype dispatch: fn(Tag<T>{}) returns the Status of the launch; nullopt when the dtype is not in the set.
template <class Fn>
std::optional<Status> dispatch_float(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::kF32: return fn(Tag<float>{});
    case DType::kF16: return fn(Tag<__half>{});
    case DType::kBF16: return fn(Tag<__nv_bfloat16>{});
    default: return std::nullopt;
  }
}
// i32/i64.
template <class Fn>
std::optional<Status> dispatch_int(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::kI32: return fn(Tag<int32_t>{});
    case DType::kI64: return fn(Tag<int64_t>{});
    default: return std::nullopt;
  }
}
// f32/f16/bf16/i32/i64.
template <class Fn>
std::optional<Status> dispatch_numeric(DType dt, Fn&& fn) {
  if (is_int_dt(dt)) return dispatch_int(dt, fn);
  return dispatch_float(dt, fn);
}
// The device element type of each dtype, for dispatch over explicit dtype lists.
template <DType D> struct DeviceType;
template <> struct DeviceType<DType::kF32> { using type = float; };
template <> struct DeviceType<DType::kF64> { using type = double; };
template <> struct DeviceType<DType::kF16> { using type = __half; };
template <> struct DeviceType<DType::kBF16> { using type = __nv_bfloat16; };
template <> struct DeviceType<DType::kI8> { using type = int8_t; };
template <> struct DeviceType<DType::kU8> { using type = uint8_t; };
template <> struct DeviceType<DType::kI16> { using type = int16_t; };
template <> struct DeviceType<DType::kU16> { using type = uint16_t; };
template <> struct DeviceType<DType::kI32> { using type = int32_t; };
template <> struct DeviceType<DType::kU32> { using type = uint32_t; };
template <> struct DeviceType<DType::kI64> { using type = int64_t; };
template <> struct DeviceType<DType::kU64> { using type = uint64_t; };

// fn(Tag<T>{}) for the device type of dt when dt is one of Ds; nullopt otherwise. Kernels name the dtypes they
// instantiate for: dispatch_in<DType::kF32, DType::kI64>(dt, fn).
template <DType... Ds, class Fn>
std::optional<Status> dispatch_in(DType dt, Fn&& fn) {
  std::optional<Status> out;
  ((dt == Ds ? (void)(out = fn(Tag<typename DeviceType<Ds>::type>{})) : void()), ...);
  return out;
}

// Unsigned integer of the element width (data movement).
template <class Fn>
std::optional<Status> dispatch_bytes(size_t bytes, Fn&& fn) {
  switch (bytes) {
    case 1: return fn(Tag<uint8_t>{});
    case 2: return fn(Tag<uint16_t>{});
    case 4: return fn(Tag<uint32_t>{});
    case 8: return fn(Tag<uint64_t>{});
    default: return std::nullopt;
  }
}

template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

inline bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Ceil-divides without work_items + kThreads - 1, which wraps for a count near INT64_MAX (a u8 tensor may have one).
inline unsigned blocks_for(int64_t work_items) {
  int64_t b = work_items / kThreads + (work_items % kThreads != 0);
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(b, 1), kMaxBlocks));
}

// n / d for n < 2^31 by multiply-high and shift (d >= 1).
struct DivU32 {
  uint32_t d = 1, m = 1, s = 0;
  DivU32() = default;
  explicit DivU32(uint32_t divisor) : d(divisor) {
    s = 0;
    while (s < 32 && (uint64_t{1} << s) < divisor) ++s;
    const uint64_t magic = ((uint64_t{1} << 32) * ((uint64_t{1} << s) - divisor)) / divisor + 1;
    m = static_cast<uint32_t>(magic);  // magic <= 2^32 - 1 for d >= 2; 1 for d == 1
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};
struct DivU64 {
  uint64_t d = 1;
  DivU64() = default;
  explicit DivU64(uint64_t divisor) : d(divisor) {}
  __device__ __forceinline__ uint64_t div(uint64_t n) const { return n / d; }
};
template <class I>
using DivOf = std::conditional_t<std::is_same_v<I, uint32_t>, DivU32, DivU64>;

// Broadcast layout of N inputs against the output, dims innermost first, size-1 dims dropped and adjacent
// dims merged wherever every input stays linear across them.
template <int N>
struct Layout {
  bool ok = false;
  int rank = 1;
  int64_t dims[kMaxRank] = {1};
  int64_t strides[N][kMaxRank] = {};
  bool fits32 = false;  // every flat index and offset < 2^31
};

template <int N>
Layout<N> make_layout(const std::vector<int64_t>& out, const std::array<const std::vector<int64_t>*, N>& ins) {
  Layout<N> L;
  const size_t R = out.size();
  std::vector<std::array<int64_t, N>> st(R);
  for (auto& s : st) s.fill(0);
  int64_t out_numel = 1;
  for (int64_t d : out) out_numel *= d;
  bool fits = out_numel <= kMax32;
  for (int k = 0; k < N; ++k) {
    const std::vector<int64_t>& d = *ins[k];
    if (d.size() > R) return L;
    int64_t s = 1;
    for (size_t j = d.size(); j-- > 0;) {
      const size_t o = R - d.size() + j;
      if (d[j] != out[o] && d[j] != 1) return L;  // not broadcastable (inference should have caught it)
      st[o][k] = d[j] == 1 ? 0 : s;
      s *= d[j];
    }
    fits = fits && s <= kMax32;
  }
  std::vector<int64_t> cd;
  std::vector<std::array<int64_t, N>> cs;
  for (size_t o = R; o-- > 0;) {  // innermost first
    if (out[o] == 1) continue;
    if (!cd.empty()) {
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && st[o][k] == cs.back()[k] * cd.back();
      if (merge) {
        cd.back() *= out[o];
        continue;
      }
    }
    cd.push_back(out[o]);
    cs.push_back(st[o]);
  }
  if (cd.empty()) {
    cd.push_back(1);
    std::array<int64_t, N> z;
    z.fill(0);
    cs.push_back(z);
  }
  if (cd.size() > static_cast<size_t>(kMaxRank)) return L;
  L.rank = static_cast<int>(cd.size());
  for (int i = 0; i < L.rank; ++i) {
    L.dims[i] = cd[i];
    for (int k = 0; k < N; ++k) L.strides[k][i] = cs[i][k];
  }
  L.fits32 = fits;
  L.ok = true;
  return L;
}

// Device-side offsets of N inputs for a flat output index, I = uint32_t or uint64_t.
template <int N, class I>
struct Indexer {
  int rank = 1;
  DivOf<I> div[kMaxRank];
  I strides[N][kMaxRank];

  __device__ __forceinline__ void offsets(I i, I (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
    for (int d = 0; d < kMaxRank; ++d) {
      if (d == rank - 1) {  // outermost dim: no division needed
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
        break;
      }
      const I q = div[d].div(i);
      const I r = i - q * static_cast<I>(div[d].d);
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += r * strides[k][d];
      i = q;
    }
  }
};

template <int N, class I>
Indexer<N, I> make_indexer(const Layout<N>& L) {
  Indexer<N, I> ix;
  ix.rank = L.rank;
  for (int d = 0; d < kMaxRank; ++d) {
    ix.div[d] = DivOf<I>(static_cast<I>(d < L.rank ? L.dims[d] : 1));
    for (int k = 0; k < N; ++k) ix.strides[k][d] = static_cast<I>(d < L.rank ? L.strides[k][d] : 0);
  }
  return ix;
}

// ---- Flat unary map: y[i] = f(x[i]) over storage types, 16-byte vectors where aligned.
template <int VEC, class F, class TI, class TO>
__global__ void __launch_bounds__(kThreads)
    unary_flat_kernel(F f, const TI* __restrict__ x, TO* __restrict__ y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if constexpr (VEC > 1) {
    const int64_t nvec = n / VEC;
    const auto* xv = reinterpret_cast<const Pack<TI, VEC>*>(x);
    auto* yv = reinterpret_cast<Pack<TO, VEC>*>(y);
    for (int64_t v = t; v < nvec; v += stride) {
      const Pack<TI, VEC> a = xv[v];
      Pack<TO, VEC> r;
#pragma unroll
      for (int k = 0; k < VEC; ++k) r.v[k] = f(a.v[k]);
      yv[v] = r;
    }
    done = nvec * VEC;
  }
  for (int64_t i = done + t; i < n; i += stride) y[i] = f(x[i]);
}

template <class TI, class TO, class F>
Status launch_unary(F f, const void* x, void* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return Status();
  constexpr int kWidest = sizeof(TI) > sizeof(TO) ? sizeof(TI) : sizeof(TO);
  constexpr int VEC = 16 / kWidest >= 1 ? 16 / kWidest : 1;
  const TI* px = static_cast<const TI*>(x);
  TO* py = static_cast<TO*>(y);
  if (VEC > 1 && n >= VEC && aligned_to(px, VEC * sizeof(TI)) && aligned_to(py, VEC * sizeof(TO))) {
    unary_flat_kernel<VEC, F, TI, TO><<<blocks_for((n + VEC - 1) / VEC), kThreads, 0, stream>>>(f, px, py, n);
  } else {
    unary_flat_kernel<1, F, TI, TO><<<blocks_for(n), kThreads, 0, stream>>>(f, px, py, n);
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

// Output aliases the input (no copy): for ops that are the identity on these dtypes.
inline void alias_input(KernelContext& ctx, size_t in = 0) {
  std::vector<int64_t> dims = ctx.output(0).dims;
  DeviceTensor t = ctx.input(in).view(std::move(dims));
  t.dtype = ctx.output(0).dtype;
  ctx.set_output(0, std::move(t));
}

}  // namespace kiln::cuda::ew
