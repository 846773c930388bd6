// ScatterND, ScatterElements (and the deprecated Scatter): the output starts as a copy of the data, then
// every update is written (reduction none, by element width) or combined with an atomic compare-and-swap loop
// (add, mul, max, min; f32/f64/f16/bf16/i32/i64, halves combined in f32 and rounded back each step).
// Duplicate indices with reduction none are unordered here (ONNX leaves them undefined; the CPU reference
// lets the last win), and reductions over duplicates run in an unspecified order. An out-of-range index skips
// its update (the CPU reference reports an error; a kernel cannot without a synchronizing read-back) and
// never writes outside the output.
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

using copy::DivOf;
using copy::kMaxDims;
using copy::norm_index;

enum class Red { kNone, kAdd, kMul, kMax, kMin };

Red reduction_of(const ir::Node& node) {
  const std::string r = node.attr_string("reduction", "none");
  if (r == "add") return Red::kAdd;
  if (r == "mul") return Red::kMul;
  if (r == "max") return Red::kMax;
  if (r == "min") return Red::kMin;
  return Red::kNone;
}

// Same expressions as the CPU reference's reduce(): std::max(a, b) is (a < b ? b : a), std::min(a, b) is
// (b < a ? b : a), which decides what a NaN operand gives.
template <class C>
__device__ __forceinline__ C combine(Red r, C a, C b) {
  switch (r) {
    case Red::kAdd:
      return static_cast<C>(a + b);
    case Red::kMul:
      return static_cast<C>(a * b);
    case Red::kMax:
      return a < b ? b : a;
    case Red::kMin:
      return b < a ? b : a;
    default:
      return b;
  }
}

template <int kBytes>
struct Bits;
template <>
struct Bits<2> {
  using T = unsigned short;
};
template <>
struct Bits<4> {
  using T = unsigned int;
};
template <>
struct Bits<8> {
  using T = unsigned long long;
};

template <class T>
__device__ __forceinline__ void atomic_combine(T* addr, T val, Red r) {
  using B = typename Bits<sizeof(T)>::T;
  using N = ew::Num<T>;
  B* p = reinterpret_cast<B*>(addr);
  B old = *reinterpret_cast<volatile B*>(p);
  while (true) {
    T cur;
    memcpy(&cur, &old, sizeof(T));
    const T next = N::store(combine<typename N::C>(r, N::load(cur), N::load(val)));
    B nb;
    memcpy(&nb, &next, sizeof(T));
    const B seen = atomicCAS(p, old, nb);
    if (seen == old) break;
    old = seen;
  }
}

// Storage type for reductions; nullopt for dtypes without one here.
template <class Fn>
std::optional<Status> dispatch_reducible(DType dt, Fn&& fn) {
  return ew::dispatch_in<DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI32, DType::kI64>(dt, fn);
}

bool reducible(DType d) {
  return d == DType::kF32 || d == DType::kF64 || d == DType::kF16 || d == DType::kBF16 || d == DType::kI32 ||
         d == DType::kI64;
}

bool scatter_supported(const ir::Node& node, const std::vector<DType>& d) {
  if (d.size() < 3 || !copy::movable(d[0]) || d[2] != d[0]) return false;
  if (d[1] != DType::kI32 && d[1] != DType::kI64) return false;
  return reduction_of(node) == Red::kNone || reducible(d[0]);
}

template <class T>
__device__ __forceinline__ void apply(T* dst, T v, Red r) {
  if (r == Red::kNone)
    *dst = v;
  else if constexpr (sizeof(T) >= 2)
    atomic_combine(dst, v, r);
}

// ---- ScatterND: update tuple t (k indices) writes `slice` elements at its offset.
struct NdParams {
  int k = 0;
  int64_t dims[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // in units
};

template <class T, class X, class I>
__global__ void __launch_bounds__(copy::kThreads)
    scatter_nd_kernel(T* __restrict__ out, const X* __restrict__ idx, const T* __restrict__ upd, I n,
                      DivOf<I> slice, NdParams p, Red red) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const I t = slice.div(i);
    const I e = i - t * static_cast<I>(slice.d);
    int64_t off = 0;
    bool ok = true;
    for (int j = 0; j < p.k; ++j) {
      const int64_t v = norm_index(static_cast<int64_t>(idx[static_cast<int64_t>(t) * p.k + j]), p.dims[j]);
      ok = ok && v >= 0;
      off += v * p.strides[j];
    }
    if (ok) apply(out + off + e, upd[i], red);
  }
}

// ---- ScatterElements: update at indices coordinate c goes to c with c[axis] = indices[c].
template <class I>
struct ElemParams {
  copy::Coords<I> coords;
  int64_t data_strides[kMaxDims] = {};  // innermost first, 0 on the axis
  int64_t axis_stride = 0, dim = 0;
};

template <class T, class X, class I>
__global__ void __launch_bounds__(copy::kThreads)
    scatter_elements_kernel(T* __restrict__ out, const X* __restrict__ idx, const T* __restrict__ upd, I n,
                            ElemParams<I> p, Red red) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t c[kMaxDims];
    p.coords.of(i, c);
    int64_t off = 0;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) off += c[d] * p.data_strides[d];
    const int64_t v = norm_index(static_cast<int64_t>(idx[i]), p.dim);
    if (v >= 0) apply(out + off + v * p.axis_stride, upd[i], red);
  }
}

// Runs fn(Tag<T>) with T the reduction's storage type, or the unsigned type of the element width for none.
template <class Fn>
std::optional<Status> dispatch_scatter(DType dt, Red red, Fn&& fn) {
  if (red != Red::kNone) return dispatch_reducible(dt, fn);
  return ew::dispatch_bytes(dtype_size(dt), fn);
}

Status copy_data(KernelContext& ctx) {
  const DeviceTensor& data = ctx.input(0);
  DeviceTensor& out = ctx.output(0);
  if (out.nbytes() && out.data != data.data)
    KILN_CUDA_CHECK(
        cudaMemcpyAsync(out.data, data.data, out.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
  return Status();
}

Status run_scatter_nd(KernelContext& ctx) {
  const DeviceTensor& data = ctx.input(0);
  const DeviceTensor& indices = ctx.input(1);
  const DeviceTensor& updates = ctx.input(2);
  DeviceTensor& out = ctx.output(0);
  const Red red = reduction_of(ctx.node());
  const int64_t q = static_cast<int64_t>(indices.rank());
  const int64_t r = static_cast<int64_t>(data.rank());
  if (q < 1) return ctx.error("indices {} must have rank >= 1", dims_to_string(indices.dims));
  const int64_t k = indices.dims[q - 1];
  if (k > r || k > kMaxDims)
    return ctx.error("index tuples of length {} do not fit the data {}", k, dims_to_string(data.dims));
  const int64_t slice = copy::product(data.dims, k, r);
  const int64_t tuples = copy::product(indices.dims, 0, q - 1);
  if (updates.numel() != tuples * slice)
    return ctx.error("updates {} do not match indices {} and data {}", dims_to_string(updates.dims),
                     dims_to_string(indices.dims), dims_to_string(data.dims));
  KILN_RETURN_IF_ERROR(copy_data(ctx));
  const int64_t n = updates.numel();
  if (n == 0) return Status();
  NdParams p;
  p.k = static_cast<int>(k);
  const std::vector<int64_t> s = copy::strides_of(data.dims);
  for (int64_t j = 0; j < k; ++j) p.dims[j] = data.dims[j], p.strides[j] = s[j];
  std::optional<Status> st = dispatch_scatter(data.dtype, red, [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    std::optional<Status> s2 = ew::dispatch_int(indices.dtype, [&](auto itag) -> Status {
      using X = typename decltype(itag)::type;
      T* o = static_cast<T*>(out.data);
      const X* x = static_cast<const X*>(indices.data);
      const T* u = static_cast<const T*>(updates.data);
      if (copy::fits32(n)) {
        scatter_nd_kernel<T, X, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            o, x, u, static_cast<uint32_t>(n), ew::DivU32(static_cast<uint32_t>(slice)), p, red);
      } else {
        scatter_nd_kernel<T, X, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            o, x, u, static_cast<uint64_t>(n), ew::DivU64(static_cast<uint64_t>(slice)), p, red);
      }
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    });
    return s2 ? std::move(*s2) : ctx.error("indices dtype {} is not supported", dtype_name(indices.dtype));
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(data.dtype));
}

Status run_scatter_elements(KernelContext& ctx) {
  const DeviceTensor& data = ctx.input(0);
  const DeviceTensor& indices = ctx.input(1);
  const DeviceTensor& updates = ctx.input(2);
  DeviceTensor& out = ctx.output(0);
  const Red red = reduction_of(ctx.node());
  const int64_t rank = static_cast<int64_t>(data.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank)
    return ctx.error("axis {} is out of range for the data {}", axis, dims_to_string(data.dims));
  if (rank > kMaxDims) return ctx.error("rank {} is above {}", rank, kMaxDims);
  if (indices.rank() != data.rank() || updates.dims != indices.dims)
    return ctx.error("indices {} and updates {} must share dims and the rank of the data {}",
                     dims_to_string(indices.dims), dims_to_string(updates.dims), dims_to_string(data.dims));
  for (size_t d = 0; d < data.rank(); ++d)
    if (indices.dims[d] > data.dims[d])
      return ctx.error("indices {} do not fit in the data {}", dims_to_string(indices.dims),
                       dims_to_string(data.dims));
  KILN_RETURN_IF_ERROR(copy_data(ctx));
  const int64_t n = updates.numel();
  if (n == 0) return Status();
  const std::vector<int64_t> s = copy::strides_of(data.dims);
  auto params = [&](auto tag) {
    using I = typename decltype(tag)::type;
    ElemParams<I> p;
    p.coords = copy::make_coords<I>(indices.dims);
    for (int64_t d = 0; d < rank; ++d) p.data_strides[rank - 1 - d] = d == axis ? 0 : s[d];
    p.axis_stride = s[axis];
    p.dim = data.dims[axis];
    return p;
  };
  std::optional<Status> st = dispatch_scatter(data.dtype, red, [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    std::optional<Status> s2 = ew::dispatch_int(indices.dtype, [&](auto itag) -> Status {
      using X = typename decltype(itag)::type;
      T* o = static_cast<T*>(out.data);
      const X* x = static_cast<const X*>(indices.data);
      const T* u = static_cast<const T*>(updates.data);
      if (copy::fits32(n)) {
        scatter_elements_kernel<T, X, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            o, x, u, static_cast<uint32_t>(n), params(ew::Tag<uint32_t>{}), red);
      } else {
        scatter_elements_kernel<T, X, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            o, x, u, static_cast<uint64_t>(n), params(ew::Tag<uint64_t>{}), red);
      }
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    });
    return s2 ? std::move(*s2) : ctx.error("indices dtype {} is not supported", dtype_name(indices.dtype));
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(data.dtype));
}

}  // namespace

void register_cuda_scatter(KernelTable& t) {
  t.add({"ScatterND", run_scatter_nd, scatter_supported});
  t.add({"ScatterElements", run_scatter_elements, scatter_supported});
  t.add({"Scatter", run_scatter_elements, scatter_supported});
}

}  // namespace kiln::cuda
