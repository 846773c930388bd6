// Shared pieces of the data-movement CUDA kernels (Transpose, Slice, Concat/Split, Gather*, Scatter*, Tile,
// Pad…). They move elements as unsigned integers of the element's width, so one kernel serves every dtype
// (f16/bf16/bool included). Where the innermost run is contiguous and aligned, elements are regrouped into
// wider units (up to 16 bytes) first: a copy of 4-byte floats whose rows are 64 floats long is the same copy
// of 16-byte units whose rows are 16 units long, and the wide one moves the bytes with a quarter of the
// instructions.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "backends/cuda/kernels/ew_common.cuh"

namespace kiln::cuda::copy {

using ew::blocks_for;
using ew::DivOf;
using ew::kThreads;

constexpr int kMaxDims = 8;  // after collapsing

// Calls fn(Tag<U>{}) with U the unsigned type of `bytes` (1, 2, 4, 8, or 16 as uint4).
template <class Fn>
std::optional<Status> dispatch_units(size_t bytes, Fn&& fn) {
  if (bytes == 16) return fn(ew::Tag<uint4>{});
  return ew::dispatch_bytes(bytes, fn);
}

inline bool aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Element widths every data-movement kernel handles.
inline bool movable(DType d) {
  const size_t s = dtype_size(d);
  return d != DType::kUndefined && (s == 1 || s == 2 || s == 4 || s == 8);
}
inline bool movable_first(const ir::Node&, const std::vector<DType>& d) {
  return !d.empty() && movable(d[0]);
}

// A strided read of a row-major output: out[i] reads src[sum(idx[d] * strides[d])]. Dims innermost first,
// size-1 dims dropped and dims merged where the source stays linear across them. Strides may be negative
// (reversed slices) or 0 (broadcast).
struct Strided {
  int rank = 0;  // 0: a single element
  int64_t dims[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  bool ok = true;  // false: more than kMaxDims dims remain
};

inline Strided collapse(const std::vector<int64_t>& out_dims, const std::vector<int64_t>& strides) {
  std::vector<int64_t> d, s;
  for (size_t o = out_dims.size(); o-- > 0;) {
    if (out_dims[o] == 1) continue;
    if (!d.empty() && strides[o] == s.back() * d.back()) {
      d.back() *= out_dims[o];
      continue;
    }
    d.push_back(out_dims[o]);
    s.push_back(strides[o]);
  }
  Strided L;
  if (d.size() > static_cast<size_t>(kMaxDims)) {
    L.ok = false;
    return L;
  }
  L.rank = static_cast<int>(d.size());
  for (int i = 0; i < L.rank; ++i) L.dims[i] = d[i], L.strides[i] = s[i];
  return L;
}

// Device-side source offset of a flat output index (I = uint32_t when the output has < 2^31 units).
template <class I>
struct SrcIndexer {
  int rank = 1;
  DivOf<I> div[kMaxDims];
  int64_t strides[kMaxDims] = {};

  __device__ __forceinline__ int64_t offset(I i) const {
    int64_t off = 0;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) {
      if (d == rank - 1) {
        off += static_cast<int64_t>(i) * strides[d];
        break;
      }
      const I q = div[d].div(i);
      off += static_cast<int64_t>(i - q * static_cast<I>(div[d].d)) * strides[d];
      i = q;
    }
    return off;
  }
};

template <class I>
SrcIndexer<I> make_src_indexer(const Strided& L) {
  SrcIndexer<I> ix;
  ix.rank = L.rank < 1 ? 1 : L.rank;
  for (int d = 0; d < kMaxDims; ++d) {
    ix.div[d] = DivOf<I>(static_cast<I>(d < L.rank ? L.dims[d] : 1));
    ix.strides[d] = d < L.rank ? L.strides[d] : 0;
  }
  return ix;
}

// Row-major output coordinates of a flat index, innermost first (for kernels that need every coordinate).
template <class I>
struct Coords {
  int rank = 0;
  DivOf<I> div[kMaxDims];

  __device__ __forceinline__ void of(I i, int64_t (&c)[kMaxDims]) const {
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) {
      if (d >= rank) {
        c[d] = 0;
        continue;
      }
      if (d == rank - 1) {
        c[d] = static_cast<int64_t>(i);
        continue;
      }
      const I q = div[d].div(i);
      c[d] = static_cast<int64_t>(i - q * static_cast<I>(div[d].d));
      i = q;
    }
  }
};

// dims outermost first (as tensors store them); the device sees them innermost first.
template <class I>
Coords<I> make_coords(const std::vector<int64_t>& dims) {
  Coords<I> c;
  c.rank = static_cast<int>(dims.size());
  for (int d = 0; d < kMaxDims; ++d)
    c.div[d] = DivOf<I>(static_cast<I>(d < c.rank ? dims[dims.size() - 1 - d] : 1));
  return c;
}

inline bool fits32(int64_t n) {
  return n <= ew::kMax32;
}

template <class U, class I>
__global__ void __launch_bounds__(kThreads)
    strided_copy_kernel(const U* __restrict__ src, U* __restrict__ dst, I n, SrcIndexer<I> ix) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = src[ix.offset(i)];
}

// Batched 2-D transpose through shared memory: the output's innermost dim (0) has a source stride != 1 and
// the source's unit-stride dim is output dim p. Each block moves a 32x32 tile: it reads along p (contiguous
// in the source) and writes along dim 0 (contiguous in the output). The remaining dims index the batch.
struct TileParams {
  int64_t d0 = 1, dp = 1, s0 = 0;  // sizes of dims 0 and p, source stride of dim 0
  int64_t out_sp = 1;              // output stride of dim p
  int nb = 0;                      // batch dims
  int64_t bdims[kMaxDims] = {}, bsrc[kMaxDims] = {}, bdst[kMaxDims] = {};  // innermost first
  int64_t tiles0 = 1, tilesp = 1, blocks = 1;
};

constexpr int kTile = 32, kTileRows = 8;

template <class U>
__global__ void __launch_bounds__(kTile* kTileRows)
    tiled_transpose_kernel(const U* __restrict__ src, U* __restrict__ dst, TileParams p) {
  __shared__ U tile[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t blk = blockIdx.x; blk < p.blocks; blk += gridDim.x) {
    int64_t b = blk / (p.tiles0 * p.tilesp);
    const int64_t t = blk - b * (p.tiles0 * p.tilesp);
    const int64_t tp = t / p.tiles0, t0 = t - tp * p.tiles0;
    int64_t src_off = 0, dst_off = 0;
    for (int d = 0; d < p.nb; ++d) {
      const int64_t q = b / p.bdims[d], r = b - q * p.bdims[d];
      src_off += r * p.bsrc[d];
      dst_off += r * p.bdst[d];
      b = q;
    }
    const int64_t pi = tp * kTile + tx;
#pragma unroll
    for (int r = ty; r < kTile; r += kTileRows) {
      const int64_t i0 = t0 * kTile + r;
      if (pi < p.dp && i0 < p.d0) tile[r][tx] = src[src_off + pi + i0 * p.s0];
    }
    __syncthreads();
    const int64_t i0 = t0 * kTile + tx;
#pragma unroll
    for (int r = ty; r < kTile; r += kTileRows) {
      const int64_t pj = tp * kTile + r;
      if (pj < p.dp && i0 < p.d0) dst[dst_off + pj * p.out_sp + i0] = tile[tx][r];
    }
    __syncthreads();
  }
}

// out (row-major, contiguous, out_dims) = src[base + sum(idx[d] * strides[d])], by element width es.
inline Status strided_copy(const void* src, int64_t base, const std::vector<int64_t>& out_dims,
                           const std::vector<int64_t>& strides, size_t es, void* dst, cudaStream_t stream) {
  int64_t n = 1;
  for (int64_t d : out_dims) n *= d;
  if (n <= 0) return Status();
  const char* s = static_cast<const char*>(src) + base * static_cast<int64_t>(es);
  Strided L = collapse(out_dims, strides);
  if (!L.ok)
    return Status(StatusCode::kUnsupported, fmt::format("more than {} dims after merging", kMaxDims));
  // Regroup a contiguous innermost run into the widest aligned unit.
  size_t unit = es;
  if (L.rank >= 1 && L.strides[0] == 1) {
    for (size_t w : {size_t{16}, size_t{8}, size_t{4}, size_t{2}}) {
      if (w <= es) break;
      bool ok = (L.dims[0] * es) % w == 0 && aligned(s, w) && aligned(dst, w);
      for (int d = 1; d < L.rank && ok; ++d)
        ok = (L.strides[d] * static_cast<int64_t>(es)) % static_cast<int64_t>(w) == 0;
      if (ok) {
        unit = w;
        break;
      }
    }
    if (unit != es) {
      const int64_t k = static_cast<int64_t>(unit / es);
      std::vector<int64_t> d2, s2;
      for (int d = L.rank; d-- > 0;) {
        d2.push_back(d == 0 ? L.dims[0] / k : L.dims[d]);
        s2.push_back(d == 0 ? 1 : L.strides[d] / k);
      }
      L = collapse(d2, s2);
      n /= k;
    }
  }
  if (L.rank == 0 || (L.rank == 1 && L.strides[0] == 1)) {
    KILN_CUDA_CHECK(cudaMemcpyAsync(dst, s, static_cast<size_t>(n) * unit, cudaMemcpyDeviceToDevice, stream));
    return Status();
  }
  int p = -1;
  for (int d = 1; d < L.rank; ++d)
    if (L.strides[d] == 1) p = d;
  std::optional<Status> st = dispatch_units(unit, [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    const U* su = reinterpret_cast<const U*>(s);
    U* du = static_cast<U*>(dst);
    if (L.strides[0] != 1 && p > 0 && L.dims[0] >= 4 && L.dims[p] >= 4) {
      TileParams tp;
      tp.d0 = L.dims[0];
      tp.dp = L.dims[p];
      tp.s0 = L.strides[0];
      int64_t out_stride = 1;
      for (int d = 0; d < L.rank; ++d) {
        if (d == p) tp.out_sp = out_stride;
        if (d != 0 && d != p) {
          tp.bdims[tp.nb] = L.dims[d];
          tp.bsrc[tp.nb] = L.strides[d];
          tp.bdst[tp.nb] = out_stride;
          ++tp.nb;
        }
        out_stride *= L.dims[d];
      }
      tp.tiles0 = (tp.d0 + kTile - 1) / kTile;
      tp.tilesp = (tp.dp + kTile - 1) / kTile;
      tp.blocks = tp.tiles0 * tp.tilesp * (n / (tp.d0 * tp.dp));
      const unsigned grid = static_cast<unsigned>(std::min<int64_t>(tp.blocks, int64_t{1} << 20));
      tiled_transpose_kernel<U><<<grid, dim3(kTile, kTileRows), 0, stream>>>(su, du, tp);
    } else if (fits32(n)) {
      strided_copy_kernel<U, uint32_t><<<blocks_for(n), kThreads, 0, stream>>>(
          su, du, static_cast<uint32_t>(n), make_src_indexer<uint32_t>(L));
    } else {
      strided_copy_kernel<U, uint64_t><<<blocks_for(n), kThreads, 0, stream>>>(
          su, du, static_cast<uint64_t>(n), make_src_indexer<uint64_t>(L));
    }
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  return st ? std::move(*st) : Status(StatusCode::kUnsupported, fmt::format("element size {}", es));
}

// Row-major strides of dims.
inline std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

inline int64_t product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < dims.size(); ++i) p *= dims[i];
  return p;
}

// Widest unit (<= 16 bytes, a multiple of es) that divides every length (in elements) and aligns every
// pointer.
inline size_t widest_unit(size_t es, const std::vector<int64_t>& lengths,
                          const std::vector<const void*>& ptrs) {
  for (size_t w : {size_t{16}, size_t{8}, size_t{4}, size_t{2}, size_t{1}}) {
    if (w <= es) return es;
    bool ok = true;
    for (int64_t l : lengths) ok = ok && (l * static_cast<int64_t>(es)) % static_cast<int64_t>(w) == 0;
    for (const void* p : ptrs) ok = ok && aligned(p, w);
    if (ok) return w;
  }
  return es;
}

// Normalizes an index against dim (negative counts from the end); -1 when out of range. Device kernels cannot
// return an error cheaply, so an out-of-range index reads as zeros (gathers) or is skipped (scatters), and
// never touches memory outside the tensor; the CPU reference reports it instead.
__device__ __forceinline__ int64_t norm_index(int64_t v, int64_t dim) {
  if (v < 0) v += dim;
  return v >= 0 && v < dim ? v : -1;
}

template <class U>
__device__ __forceinline__ U zero_unit() {
  return U{};
}

}  // namespace kiln::cuda::copy
