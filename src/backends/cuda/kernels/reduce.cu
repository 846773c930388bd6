// Reduce* (Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare) over any set of axes, and
// ArgMax/ArgMin. Floats (f32/f16/bf16) accumulate in f32; i32/i64 in 64-bit integers with wrap-around, like the
// CPU reference. The input's dims are merged into alternating kept/reduced groups (size-1 dims dropped):
//  - one reduced group, nothing kept after it: rows [outer, R] (one warp per row for R <= 1024, else a block
//    per row, split over several blocks through the workspace when rows are few and long);
//  - one reduced group with kept dims after it: columns [outer, R, inner], a 32x8 block per 32 columns,
//    likewise split when there are few columns;
//  - several reduced groups: a general kernel that unravels both index sets (a block, a warp or a thread per
//    output, by the reduced count and the number of outputs).
// The split forms use the context's workspace (stream-ordered scratch) for the partial states.
// Special cases follow the CPU reference: Max/Min propagate NaN; empty reductions give the identity (Mean: NaN
// for floats, 0 for integers; LogSumExp: -inf); LogSumExp returns the max when it is infinite.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/norm_reduce_common.cuh"
#include "ops/reduce.h"

namespace kiln::cuda {

namespace {

using nrk::ceil_div;
using nrk::from_f;
using nrk::Pack;
using nrk::to_f;

enum class ROp { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

const std::pair<std::string_view, ROp> kOps[] = {
    {"ReduceSum", ROp::kSum},   {"ReduceMean", ROp::kMean},           {"ReduceMax", ROp::kMax},
    {"ReduceMin", ROp::kMin},   {"ReduceProd", ROp::kProd},           {"ReduceL1", ROp::kL1},
    {"ReduceL2", ROp::kL2},     {"ReduceLogSum", ROp::kLogSum},       {"ReduceLogSumExp", ROp::kLogSumExp},
    {"ReduceSumSquare", ROp::kSumSquare},
};

template <class T>
constexpr bool kIsFloat = std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

// ---- reducers: state S, init, add(element), merge, finish(count) -------------------------------------------
__device__ __forceinline__ float nan_max(float a, float b) { return (isnan(a) || a > b) ? a : b; }
__device__ __forceinline__ float nan_min(float a, float b) { return (isnan(a) || a < b) ? a : b; }

template <class T, ROp OP, class Enable = void>
struct Reducer;

template <class T, ROp OP>
struct Reducer<T, OP, std::enable_if_t<kIsFloat<T> && OP != ROp::kLogSumExp>> {
  using S = float;
  __device__ static S init() {
    if constexpr (OP == ROp::kProd) return 1.f;
    if constexpr (OP == ROp::kMax) return -INFINITY;
    if constexpr (OP == ROp::kMin) return INFINITY;
    return 0.f;
  }
  __device__ static S add(S s, T e) {
    const float v = to_f<T>(e);
    if constexpr (OP == ROp::kMax) return nan_max(s, v);
    if constexpr (OP == ROp::kMin) return nan_min(s, v);
    if constexpr (OP == ROp::kProd) return s * v;
    if constexpr (OP == ROp::kL1) return s + fabsf(v);
    if constexpr (OP == ROp::kL2 || OP == ROp::kSumSquare) return s + v * v;
    return s + v;
  }
  __device__ static S merge(S a, S b) {
    if constexpr (OP == ROp::kMax) return nan_max(a, b);
    if constexpr (OP == ROp::kMin) return nan_min(a, b);
    if constexpr (OP == ROp::kProd) return a * b;
    return a + b;
  }
  __device__ static T finish(S s, int64_t n) {
    if constexpr (OP == ROp::kMean) return from_f<T>(s / static_cast<float>(n));
    if constexpr (OP == ROp::kL2) return from_f<T>(sqrtf(s));
    if constexpr (OP == ROp::kLogSum) return from_f<T>(logf(s));
    return from_f<T>(s);
  }
};

// LogSumExp as a running (max, sum of exp(x - max)). NaN never becomes the max (as std::max in the reference)
// but poisons the sum; -inf adds nothing; an infinite max is the result.
template <class T, ROp OP>
struct Reducer<T, OP, std::enable_if_t<kIsFloat<T> && OP == ROp::kLogSumExp>> {
  using S = float2;  // x: max, y: sum
  __device__ static S init() { return make_float2(-INFINITY, 0.f); }
  __device__ static S add(S s, T e) {
    const float v = to_f<T>(e);
    if (isnan(v)) {
      s.y = v;
    } else if (v > s.x) {
      s.y = s.y * expf(s.x - v) + 1.f;  // s.x = -inf: s.y * 0 (NaN stays NaN)
      s.x = v;
    } else if (v != -INFINITY) {
      s.y += expf(v - s.x);
    }
    return s;
  }
  __device__ static S merge(S a, S b) {
    const float m = fmaxf(a.x, b.x);
    const float ta = a.x == m ? a.y : a.y * expf(a.x - m);
    const float tb = b.x == m ? b.y : b.y * expf(b.x - m);
    return make_float2(m, ta + tb);
  }
  __device__ static T finish(S s, int64_t) {
    if (isinf(s.x)) return from_f<T>(s.x);
    return from_f<T>(s.x + logf(s.y));
  }
};

__device__ __forceinline__ long long wrap_add(long long a, long long b) {
  return static_cast<long long>(static_cast<unsigned long long>(a) + static_cast<unsigned long long>(b));
}
__device__ __forceinline__ long long wrap_mul(long long a, long long b) {
  return static_cast<long long>(static_cast<unsigned long long>(a) * static_cast<unsigned long long>(b));
}

template <class T, ROp OP>
struct Reducer<T, OP, std::enable_if_t<std::is_integral_v<T>>> {
  using S = long long;
  __device__ static S init() {
    if constexpr (OP == ROp::kProd) return 1;
    if constexpr (OP == ROp::kMax) return static_cast<S>(std::numeric_limits<T>::lowest());
    if constexpr (OP == ROp::kMin) return static_cast<S>(std::numeric_limits<T>::max());
    return 0;
  }
  __device__ static S add(S s, T e) {
    const S v = static_cast<S>(e);
    if constexpr (OP == ROp::kMax) return v > s ? v : s;
    if constexpr (OP == ROp::kMin) return v < s ? v : s;
    if constexpr (OP == ROp::kProd) return wrap_mul(s, v);
    if constexpr (OP == ROp::kL1) return wrap_add(s, v < 0 ? wrap_mul(v, -1) : v);
    if constexpr (OP == ROp::kSumSquare) return wrap_add(s, wrap_mul(v, v));
    return wrap_add(s, v);
  }
  __device__ static S merge(S a, S b) {
    if constexpr (OP == ROp::kMax) return a > b ? a : b;
    if constexpr (OP == ROp::kMin) return a < b ? a : b;
    if constexpr (OP == ROp::kProd) return wrap_mul(a, b);
    return wrap_add(a, b);
  }
  __device__ static T finish(S s, int64_t n) {
    if constexpr (OP == ROp::kMean) return n == 0 ? T(0) : static_cast<T>(s / static_cast<S>(n));
    return static_cast<T>(s);
  }
};

__device__ __forceinline__ float shfl_state(float v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ long long shfl_state(long long v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ float2 shfl_state(float2 v, int o) {
  return make_float2(__shfl_xor_sync(0xffffffffu, v.x, o), __shfl_xor_sync(0xffffffffu, v.y, o));
}

template <class Rd, class S>
__device__ __forceinline__ S warp_reduce(S s) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s = Rd::merge(s, shfl_state(s, o));
  return s;
}

// blockDim.x a multiple of 32 (1-D blocks); every thread gets the result.
template <class Rd, class S>
__device__ __forceinline__ S block_reduce(S s, S* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  s = warp_reduce<Rd>(s);
  __syncthreads();
  if (lane == 0) sh[warp] = s;
  __syncthreads();
  s = lane < nwarps ? sh[lane] : Rd::init();
  return warp_reduce<Rd>(s);
}

// ---- kernels ------------------------------------------------------------------------------------------------
// Rows [rows, R], one warp per row; P elements per access (R % P == 0 when P > 1).
template <class T, ROp OP, int P>
__global__ void __launch_bounds__(128) reduce_rows_warp(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                                        int64_t R) {
  using Rd = Reducer<T, OP>;
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x >> 5;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps_per_block;
  const int64_t np = R / P;
  for (int64_t row = blockIdx.x * warps_per_block + (threadIdx.x >> 5); row < rows; row += stride) {
    const Pack<T, P>* xr = reinterpret_cast<const Pack<T, P>*>(x + row * R);
    typename Rd::S s = Rd::init();
    for (int64_t p = lane; p < np; p += 32) {
      const Pack<T, P> v = xr[p];
#pragma unroll
      for (int j = 0; j < P; ++j) s = Rd::add(s, v.v[j]);
    }
    s = warp_reduce<Rd>(s);
    if (lane == 0) y[row] = Rd::finish(s, R);
  }
}

// Rows [rows, R], one block per (row, split); a split covers chunk packs. With splits > 1 the partial states go to
// ws[row * splits + split] and reduce_finalize finishes them.
template <class T, ROp OP, int P>
__global__ void __launch_bounds__(256) reduce_rows_block(const T* __restrict__ x, T* __restrict__ y,
                                                         typename Reducer<T, OP>::S* __restrict__ ws, int64_t rows,
                                                         int64_t R, int64_t chunk, int splits) {
  using Rd = Reducer<T, OP>;
  using S = typename Rd::S;
  __shared__ S sh[32];
  const int split = blockIdx.y;
  const int64_t np = R / P;
  const int64_t p0 = split * chunk;
  const int64_t p1 = p0 + chunk < np ? p0 + chunk : np;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const Pack<T, P>* xr = reinterpret_cast<const Pack<T, P>*>(x + row * R);
    S s = Rd::init();
    for (int64_t p = p0 + threadIdx.x; p < p1; p += blockDim.x) {
      const Pack<T, P> v = xr[p];
#pragma unroll
      for (int j = 0; j < P; ++j) s = Rd::add(s, v.v[j]);
    }
    s = block_reduce<Rd>(s, sh);
    if (threadIdx.x == 0) {
      if (splits == 1)
        y[row] = Rd::finish(s, R);
      else
        ws[row * splits + split] = s;
    }
  }
}

// Columns [outer, R, inner]: a (32, 8) block reduces 32 adjacent columns of one outer index over the R range of
// its split (threadIdx.y strides the range), then combines the 8 partial states in shared memory.
template <class T, ROp OP>
__global__ void __launch_bounds__(256) reduce_cols(const T* __restrict__ x, T* __restrict__ y,
                                                   typename Reducer<T, OP>::S* __restrict__ ws, int64_t outer,
                                                   int64_t R, int64_t inner, int64_t chunk, int splits) {
  using Rd = Reducer<T, OP>;
  using S = typename Rd::S;
  __shared__ S sh[8][32];
  const int64_t tiles_inner = ceil_div(inner, 32);
  const int64_t tiles = outer * tiles_inner;
  const int split = blockIdx.y;
  const int64_t r0 = split * chunk;
  const int64_t r1 = r0 + chunk < R ? r0 + chunk : R;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t o = t / tiles_inner;
    const int64_t i = (t - o * tiles_inner) * 32 + threadIdx.x;
    S s = Rd::init();
    if (i < inner) {
      const T* base = x + o * R * inner + i;
      for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s = Rd::add(s, base[r * inner]);
    }
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
#pragma unroll
      for (int k = 1; k < 8; ++k) s = Rd::merge(s, sh[k][threadIdx.x]);
      const int64_t out = o * inner + i;
      if (splits == 1)
        y[out] = Rd::finish(s, R);
      else
        ws[out * splits + split] = s;
    }
    __syncthreads();
  }
}

// One warp per output folds the output's `splits` partial states.
template <class T, ROp OP>
__global__ void __launch_bounds__(256) reduce_finalize(const typename Reducer<T, OP>::S* __restrict__ ws,
                                                       T* __restrict__ y, int64_t outputs, int splits, int64_t R) {
  using Rd = Reducer<T, OP>;
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x >> 5;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps_per_block;
  for (int64_t o = blockIdx.x * warps_per_block + (threadIdx.x >> 5); o < outputs; o += stride) {
    typename Rd::S s = Rd::init();
    for (int k = lane; k < splits; k += 32) s = Rd::merge(s, ws[o * splits + k]);
    s = warp_reduce<Rd>(s);
    if (lane == 0) y[o] = Rd::finish(s, R);
  }
}

constexpr int kMaxGroups = 8;

// Merged kept and reduced groups with their input strides, row-major within each set.
struct GeneralDesc {
  int nk = 0, nr = 0;
  int64_t kdims[kMaxGroups] = {}, kstrides[kMaxGroups] = {};
  int64_t rdims[kMaxGroups] = {}, rstrides[kMaxGroups] = {};
  int64_t outputs = 0, R = 0;
};

__device__ __forceinline__ int64_t unravel_offset(int64_t idx, int n, const int64_t* dims, const int64_t* strides) {
  int64_t off = 0;
  for (int d = n - 1; d >= 0; --d) {
    const int64_t q = idx / dims[d];
    off += (idx - q * dims[d]) * strides[d];
    idx = q;
  }
  return off;
}

// GROUP threads per output (1, 32, or the whole block: blockDim.x), striding the reduced index set.
template <class T, ROp OP, int GROUP>
__global__ void __launch_bounds__(256) reduce_general(const T* __restrict__ x, T* __restrict__ y, GeneralDesc g) {
  using Rd = Reducer<T, OP>;
  using S = typename Rd::S;
  constexpr bool kBlock = GROUP > 32;
  __shared__ S sh[32];
  const int64_t group = kBlock ? blockDim.x : GROUP;
  const int64_t tid = kBlock ? threadIdx.x : (GROUP == 1 ? 0 : (threadIdx.x & 31));
  const int64_t groups_per_block = kBlock ? 1 : blockDim.x / GROUP;
  const int64_t first = kBlock ? blockIdx.x : blockIdx.x * groups_per_block + threadIdx.x / GROUP;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * groups_per_block;
  for (int64_t o = first; o < g.outputs; o += stride) {
    const T* base = x + unravel_offset(o, g.nk, g.kdims, g.kstrides);
    S s = Rd::init();
    for (int64_t r = tid; r < g.R; r += group) s = Rd::add(s, base[unravel_offset(r, g.nr, g.rdims, g.rstrides)]);
    if constexpr (kBlock)
      s = block_reduce<Rd>(s, sh);
    else if constexpr (GROUP == 32)
      s = warp_reduce<Rd>(s);
    if (tid == 0) y[o] = Rd::finish(s, g.R);
  }
}

// ---- host side ----------------------------------------------------------------------------------------------
int sm_count() {
  static const int count = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        n <= 0) {
      cudaGetLastError();
      n = 132;
    }
    return n;
  }();
  return count;
}

struct Layout {
  // kind 0: rows [outer, R]; 1: columns [outer, R, inner]; 2: general
  int kind = 0;
  int64_t outer = 1, R = 1, inner = 1;
  GeneralDesc g;
};

template <class T, ROp OP>
void launch_reduce(KernelContext& ctx, const T* x, T* y, const Layout& L, int64_t outputs) {
  using Rd = Reducer<T, OP>;
  using S = typename Rd::S;
  cudaStream_t st = ctx.stream();
  const int sms = sm_count();
  S* ws = static_cast<S*>(ctx.res().workspace);
  const size_t ws_states = ws ? ctx.res().workspace_bytes / sizeof(S) : 0;
  if (L.kind == 2) {
    if (L.g.R >= 1024 && outputs < 32 * sms)
      reduce_general<T, OP, 256><<<nrk::grid_for(outputs, 1), 256, 0, st>>>(x, y, L.g);
    else if (L.g.R >= 32)
      reduce_general<T, OP, 32><<<nrk::grid_for(outputs, 8), 256, 0, st>>>(x, y, L.g);
    else
      reduce_general<T, OP, 1><<<nrk::grid_for(outputs, 256), 256, 0, st>>>(x, y, L.g);
    return;
  }
  if (L.kind == 1) {
    const int64_t tiles = L.outer * ceil_div(L.inner, 32);
    int64_t splits = 1;
    if (tiles < 2 * sms && L.R >= 64 && ws_states > 0) {
      splits = std::min<int64_t>({ceil_div(4 * sms, tiles), ceil_div(L.R, 64), 1024});
      while (splits > 1 && static_cast<size_t>(outputs * splits) > ws_states) splits /= 2;
    }
    const int64_t chunk = ceil_div(L.R, splits);
    splits = std::max<int64_t>(1, ceil_div(L.R, chunk));
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(tiles, int64_t{1} << 20)), static_cast<unsigned>(splits));
    reduce_cols<T, OP><<<grid, dim3(32, 8), 0, st>>>(x, y, ws, L.outer, L.R, L.inner, chunk, static_cast<int>(splits));
    if (splits > 1)
      reduce_finalize<T, OP><<<nrk::grid_for(outputs, 8), 256, 0, st>>>(ws, y, outputs, static_cast<int>(splits), L.R);
    return;
  }
  // Rows.
  constexpr int P = 16 / sizeof(T);
  const bool vec = L.R % P == 0 && nrk::aligned16(x);
  const int64_t rows = L.outer;
  if (L.R <= 1024) {
    if (vec)
      reduce_rows_warp<T, OP, P><<<nrk::grid_for(rows, 4), 128, 0, st>>>(x, y, rows, L.R);
    else
      reduce_rows_warp<T, OP, 1><<<nrk::grid_for(rows, 4), 128, 0, st>>>(x, y, rows, L.R);
    return;
  }
  const int64_t np = vec ? L.R / P : L.R;
  int64_t splits = 1;
  if (rows < 2 * sms && np >= 8192 && ws_states > 0) {
    splits = std::min<int64_t>({ceil_div(4 * sms, rows), ceil_div(np, 4096), 1024});
    while (splits > 1 && static_cast<size_t>(rows * splits) > ws_states) splits /= 2;
  }
  const int64_t chunk = ceil_div(np, splits);
  splits = std::max<int64_t>(1, ceil_div(np, chunk));
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(rows, int64_t{1} << 20)), static_cast<unsigned>(splits));
  if (vec)
    reduce_rows_block<T, OP, P><<<grid, 256, 0, st>>>(x, y, ws, rows, L.R, chunk, static_cast<int>(splits));
  else
    reduce_rows_block<T, OP, 1><<<grid, 256, 0, st>>>(x, y, ws, rows, L.R, chunk, static_cast<int>(splits));
  if (splits > 1)
    reduce_finalize<T, OP><<<nrk::grid_for(rows, 8), 256, 0, st>>>(ws, y, rows, static_cast<int>(splits), L.R);
}

template <class T>
bool launch_reduce_op(KernelContext& ctx, ROp op, const T* x, T* y, const Layout& L, int64_t outputs) {
  switch (op) {
    case ROp::kSum: launch_reduce<T, ROp::kSum>(ctx, x, y, L, outputs); return true;
    case ROp::kMean: launch_reduce<T, ROp::kMean>(ctx, x, y, L, outputs); return true;
    case ROp::kMax: launch_reduce<T, ROp::kMax>(ctx, x, y, L, outputs); return true;
    case ROp::kMin: launch_reduce<T, ROp::kMin>(ctx, x, y, L, outputs); return true;
    case ROp::kProd: launch_reduce<T, ROp::kProd>(ctx, x, y, L, outputs); return true;
    case ROp::kL1: launch_reduce<T, ROp::kL1>(ctx, x, y, L, outputs); return true;
    case ROp::kSumSquare: launch_reduce<T, ROp::kSumSquare>(ctx, x, y, L, outputs); return true;
    default: break;
  }
  if constexpr (kIsFloat<T>) {
    switch (op) {
      case ROp::kL2: launch_reduce<T, ROp::kL2>(ctx, x, y, L, outputs); return true;
      case ROp::kLogSum: launch_reduce<T, ROp::kLogSum>(ctx, x, y, L, outputs); return true;
      case ROp::kLogSumExp: launch_reduce<T, ROp::kLogSumExp>(ctx, x, y, L, outputs); return true;
      default: break;
    }
  }
  return false;
}

ROp op_of(const ir::Node& node) {
  for (const auto& [name, o] : kOps)
    if (name == node.op_type) return o;
  return ROp::kSum;
}

bool supports_reduce(const ir::Node& node, const std::vector<DType>& dts) {
  if (dts.empty()) return false;
  if (nrk::is_cuda_float(dts[0])) return true;
  if (dts[0] != DType::kI32 && dts[0] != DType::kI64) return false;
  const ROp op = op_of(node);
  return op != ROp::kL2 && op != ROp::kLogSum && op != ROp::kLogSumExp;
}

Status run_reduce(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  const Tensor* axes = ctx.has_input(1) ? ctx.host_input(1) : nullptr;
  auto spec = ops::reduce_spec(ctx.node(), ctx.opset(), rank, axes, ctx.has_input(1));
  if (!spec.ok()) return spec.status();
  if (!spec->axes_known) return ctx.error("the axes input is not available on the host");
  if (spec->noop) {
    // The output is the input: alias it, as the view kernels do.
    ctx.set_output(0, x.view(y.dims));
    return Status();
  }
  const int64_t outputs = y.numel();
  if (outputs == 0) return Status();
  // Merge dims into alternating kept/reduced groups, dropping size-1 dims.
  std::vector<int64_t> gsize;
  std::vector<bool> gred;
  int64_t R = 1;
  for (int64_t d = 0; d < rank; ++d) {
    const bool red = spec->reduced[d];
    if (red) R *= x.dims[d];
    if (x.dims[d] == 1) continue;
    if (!gsize.empty() && gred.back() == red)
      gsize.back() *= x.dims[d];
    else
      gsize.push_back(x.dims[d]), gred.push_back(red);
  }
  Layout L;
  int nred = 0;
  for (bool r : gred) nred += r;
  if (R == 0 || nred == 0) {
    // Nothing to read (an empty reduced axis) or nothing to reduce: each output folds R elements in place.
    L.kind = 0;
    L.outer = outputs;
    L.R = R;
  } else if (nred == 1) {
    size_t gi = 0;
    while (!gred[gi]) L.outer *= gsize[gi++];
    L.R = gsize[gi++];
    for (; gi < gsize.size(); ++gi) L.inner *= gsize[gi];
    L.kind = L.inner == 1 ? 0 : 1;
  } else {
    L.kind = 2;
    std::vector<int64_t> gstride(gsize.size(), 1);
    for (int64_t i = static_cast<int64_t>(gsize.size()) - 2; i >= 0; --i) gstride[i] = gstride[i + 1] * gsize[i + 1];
    for (size_t i = 0; i < gsize.size(); ++i) {
      int& n = gred[i] ? L.g.nr : L.g.nk;
      if (n >= kMaxGroups) return ctx.error("too many alternating reduced/kept dim groups ({})", gsize.size());
      (gred[i] ? L.g.rdims : L.g.kdims)[n] = gsize[i];
      (gred[i] ? L.g.rstrides : L.g.kstrides)[n] = gstride[i];
      ++n;
    }
    L.g.outputs = outputs;
    L.g.R = R;
  }
  const ROp op = op_of(ctx.node());
  bool ok = false;
  auto go = [&](auto tag) {
    using T = typename decltype(tag)::type;
    ok = launch_reduce_op<T>(ctx, op, x.ptr<const T>(), y.ptr<T>(), L, outputs);
  };
  switch (x.dtype) {
    case DType::kF32: go(nrk::Tag<float>{}); break;
    case DType::kF16: go(nrk::Tag<__half>{}); break;
    case DType::kBF16: go(nrk::Tag<__nv_bfloat16>{}); break;
    case DType::kI32: go(nrk::Tag<int32_t>{}); break;
    case DType::kI64: go(nrk::Tag<int64_t>{}); break;
    default: break;
  }
  if (!ok) return ctx.error("{} is not supported for dtype {}", ctx.node().op_type, dtype_name(x.dtype));
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

// ---- ArgMax / ArgMin ------------------------------------------------------------------------------------------
// (value, index) with index -1 for "nothing yet". The winner: any NaN beats numbers (floats); else the larger
// (ArgMax) or smaller (ArgMin); ties (NaN vs NaN, equal values) go to the first index, or the last with
// select_last_index. Associative and commutative, so any combining order gives the reference's sequential answer.
template <class V>
struct ArgState {
  V v;
  long long i;
};

template <class V>
__device__ __forceinline__ bool arg_isnan(V v) {
  if constexpr (std::is_same_v<V, float>)
    return isnan(v);
  else
    return false;
}

template <class V>
__device__ __forceinline__ ArgState<V> arg_combine(ArgState<V> a, ArgState<V> b, bool is_max, bool last) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  const bool an = arg_isnan(a.v), bn = arg_isnan(b.v);
  if (an != bn) return an ? a : b;
  if (!an) {
    if (is_max ? a.v > b.v : a.v < b.v) return a;
    if (is_max ? b.v > a.v : b.v < a.v) return b;
  }
  return (last ? a.i > b.i : a.i < b.i) ? a : b;
}

template <class T>
__device__ __forceinline__ auto arg_value(T e) {
  if constexpr (kIsFloat<T>)
    return to_f<T>(e);
  else
    return static_cast<long long>(e);
}

template <class T>
using ArgV = std::conditional_t<kIsFloat<T>, float, long long>;

template <class V>
__device__ __forceinline__ ArgState<V> arg_shfl(ArgState<V> s, int o) {
  s.v = __shfl_xor_sync(0xffffffffu, s.v, o);
  s.i = __shfl_xor_sync(0xffffffffu, s.i, o);
  return s;
}

// Rows [rows, n] (inner == 1): a warp (blockDim 128) or a whole block (blockDim 256) per row; P elements per
// access (n % P == 0 when P > 1).
template <class T, int P, bool BLOCK>
__global__ void __launch_bounds__(256) arg_rows(const T* __restrict__ x, int64_t* __restrict__ y, int64_t rows,
                                                int64_t n, bool is_max, bool last) {
  using V = ArgV<T>;
  __shared__ ArgState<V> sh[32];
  const int lane = threadIdx.x & 31;
  const int64_t group = BLOCK ? blockDim.x : 32;
  const int64_t tid = BLOCK ? threadIdx.x : lane;
  const int64_t groups_per_block = BLOCK ? 1 : (blockDim.x >> 5);
  const int64_t first = BLOCK ? blockIdx.x : blockIdx.x * groups_per_block + (threadIdx.x >> 5);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * groups_per_block;
  for (int64_t row = first; row < rows; row += stride) {
    const Pack<T, P>* xr = reinterpret_cast<const Pack<T, P>*>(x + row * n);
    ArgState<V> s{V(0), -1};
    for (int64_t p = tid; p < n / P; p += group) {
      const Pack<T, P> v = xr[p];
#pragma unroll
      for (int j = 0; j < P; ++j) s = arg_combine<V>(s, ArgState<V>{arg_value<T>(v.v[j]), p * P + j}, is_max, last);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s = arg_combine<V>(s, arg_shfl<V>(s, o), is_max, last);
    if constexpr (BLOCK) {
      const int warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
      __syncthreads();
      if (lane == 0) sh[warp] = s;
      __syncthreads();
      s = lane < nwarps ? sh[lane] : ArgState<V>{V(0), -1};
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) s = arg_combine<V>(s, arg_shfl<V>(s, o), is_max, last);
      if (threadIdx.x == 0) y[row] = s.i;
    } else {
      if (lane == 0) y[row] = s.i;
    }
  }
}

// Columns [outer, n, inner]: one thread per (outer, inner), adjacent threads on adjacent columns.
template <class T>
__global__ void __launch_bounds__(256) arg_cols(const T* __restrict__ x, int64_t* __restrict__ y, int64_t outer,
                                                int64_t n, int64_t inner, bool is_max, bool last) {
  using V = ArgV<T>;
  const int64_t total = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t o = idx / inner, i = idx - o * inner;
    const T* xr = x + o * n * inner + i;
    ArgState<V> s{V(0), -1};
    for (int64_t k = 0; k < n; ++k) s = arg_combine<V>(s, ArgState<V>{arg_value<T>(xr[k * inner]), k}, is_max, last);
    y[idx] = s.i;
  }
}

template <class T, int P>
void launch_arg_rows(const T* px, int64_t* py, int64_t outer, int64_t n, bool is_max, bool last, cudaStream_t st) {
  if (n <= 2048)
    arg_rows<T, P, false><<<nrk::grid_for(outer, 4), 128, 0, st>>>(px, py, outer, n, is_max, last);
  else
    arg_rows<T, P, true><<<nrk::grid_for(outer, 1), 256, 0, st>>>(px, py, outer, n, is_max, last);
}

bool supports_arg(const ir::Node&, const std::vector<DType>& dts) {
  return !dts.empty() && (nrk::is_cuda_float(dts[0]) || dts[0] == DType::kI32 || dts[0] == DType::kI64);
}

Status run_arg(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  const bool is_max = ctx.node().op_type == "ArgMax";
  const bool last = ctx.node().attr_int("select_last_index", 0) != 0;
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) return ctx.error("needs an input of rank >= 1");
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dims[i];
  for (int64_t i = axis + 1; i < rank; ++i) inner *= x.dims[i];
  const int64_t n = x.dims[axis];
  if (y.numel() == 0) return Status();
  if (n == 0) return ctx.error("axis {} is empty: there is no element to pick", axis);
  int64_t* py = y.ptr<int64_t>();
  cudaStream_t st = ctx.stream();
  auto go = [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.ptr<const T>();
    if (inner > 1)
      arg_cols<T><<<nrk::grid_for(outer * inner, 256), 256, 0, st>>>(px, py, outer, n, inner, is_max, last);
    else if (n % (16 / sizeof(T)) == 0 && nrk::aligned16(px))
      launch_arg_rows<T, 16 / sizeof(T)>(px, py, outer, n, is_max, last, st);
    else
      launch_arg_rows<T, 1>(px, py, outer, n, is_max, last, st);
  };
  switch (x.dtype) {
    case DType::kF32: go(nrk::Tag<float>{}); break;
    case DType::kF16: go(nrk::Tag<__half>{}); break;
    case DType::kBF16: go(nrk::Tag<__nv_bfloat16>{}); break;
    case DType::kI32: go(nrk::Tag<int32_t>{}); break;
    case DType::kI64: go(nrk::Tag<int64_t>{}); break;
    default: return ctx.error("dtype {} is not supported", dtype_name(x.dtype));
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

}  // namespace

void register_cuda_reduce(KernelTable& t) {
  for (const auto& [name, op] : kOps) t.add({name, run_reduce, supports_reduce, 0b10});
  t.add({"ArgMax", run_arg, supports_arg});
  t.add({"ArgMin", run_arg, supports_arg});
}

}  // namespace kiln::cuda
