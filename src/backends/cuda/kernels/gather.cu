// Gather, GatherElements and GatherND by element width, with int32 or int64 indices (negative ones count from
// the end). The CPU reference rejects an out-of-range index with an error; a kernel cannot report one without
// a synchronizing read-back, so here such an index yields zeros for what it would have read, and nothing
// outside the data is ever read.
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

using copy::DivOf;
using copy::kMaxDims;
using copy::norm_index;

bool data_and_index(const ir::Node&, const std::vector<DType>& d) {
  return d.size() >= 2 && copy::movable(d[0]) && (d[1] == DType::kI32 || d[1] == DType::kI64);
}

// ---- Gather: data [outer, dim, inner], indices [n] (flattened) -> out [outer, n, inner].
template <class U, class X, class I>
__global__ void __launch_bounds__(copy::kThreads)
    gather_kernel(const U* __restrict__ data, const X* __restrict__ idx, U* __restrict__ out, I total,
                  DivOf<I> inner, DivOf<I> n, int64_t dim) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const I t = inner.div(i);
    const I k = i - t * static_cast<I>(inner.d);
    const I o = n.div(t);
    const I j = t - o * static_cast<I>(n.d);
    const int64_t v = norm_index(static_cast<int64_t>(idx[j]), dim);
    out[i] = v < 0 ? U{} : data[(static_cast<int64_t>(o) * dim + v) * static_cast<int64_t>(inner.d) + k];
  }
}

Status run_gather(KernelContext& ctx) {
  const DeviceTensor& data = ctx.input(0);
  const DeviceTensor& indices = ctx.input(1);
  DeviceTensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(data.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank)
    return ctx.error("axis {} is out of range for the data {}", axis, dims_to_string(data.dims));
  const int64_t total_elems = out.numel();
  if (total_elems == 0) return Status();
  const int64_t outer = copy::product(data.dims, 0, axis);
  const int64_t dim = data.dims[axis];
  const int64_t inner = copy::product(data.dims, axis + 1, rank);
  const int64_t n = indices.numel();
  const size_t es = dtype_size(data.dtype);
  const size_t unit = copy::widest_unit(es, {inner}, {data.data, out.data});
  const int64_t k = static_cast<int64_t>(unit / es);
  const int64_t total = total_elems / k;
  std::optional<Status> st = copy::dispatch_units(unit, [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    std::optional<Status> s2 = ew::dispatch_int(indices.dtype, [&](auto itag) -> Status {
      using X = typename decltype(itag)::type;
      const U* d = static_cast<const U*>(data.data);
      const X* x = static_cast<const X*>(indices.data);
      U* o = static_cast<U*>(out.data);
      if (copy::fits32(total) && copy::fits32(outer * n)) {
        gather_kernel<U, X, uint32_t><<<copy::blocks_for(total), copy::kThreads, 0, ctx.stream()>>>(
            d, x, o, static_cast<uint32_t>(total), ew::DivU32(static_cast<uint32_t>(inner / k)),
            ew::DivU32(static_cast<uint32_t>(n)), dim);
      } else {
        gather_kernel<U, X, uint64_t><<<copy::blocks_for(total), copy::kThreads, 0, ctx.stream()>>>(
            d, x, o, static_cast<uint64_t>(total), ew::DivU64(static_cast<uint64_t>(inner / k)),
            ew::DivU64(static_cast<uint64_t>(n)), dim);
      }
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    });
    return s2 ? std::move(*s2) : ctx.error("indices dtype {} is not supported", dtype_name(indices.dtype));
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(data.dtype));
}

// ---- GatherElements: out[c] = data[c with c[axis] = indices[c]]; out and indices share dims.
template <class I>
struct ElemParams {
  copy::Coords<I> coords;               // of the indices / output
  int64_t data_strides[kMaxDims] = {};  // innermost first, 0 on the axis
  int64_t axis_stride = 0, dim = 0;
};

template <class U, class X, class I>
__global__ void __launch_bounds__(copy::kThreads)
    gather_elements_kernel(const U* __restrict__ data, const X* __restrict__ idx, U* __restrict__ out, I n,
                           ElemParams<I> p) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t c[kMaxDims];
    p.coords.of(i, c);
    int64_t off = 0;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) off += c[d] * p.data_strides[d];
    const int64_t v = norm_index(static_cast<int64_t>(idx[i]), p.dim);
    out[i] = v < 0 ? U{} : data[off + v * p.axis_stride];
  }
}

template <class I>
ElemParams<I> elem_params(const std::vector<int64_t>& data_dims, const std::vector<int64_t>& index_dims,
                          int64_t axis) {
  ElemParams<I> p;
  p.coords = copy::make_coords<I>(index_dims);
  const std::vector<int64_t> s = copy::strides_of(data_dims);
  const size_t r = data_dims.size();
  for (size_t d = 0; d < r; ++d) p.data_strides[r - 1 - d] = static_cast<int64_t>(d) == axis ? 0 : s[d];
  p.axis_stride = s[axis];
  p.dim = data_dims[axis];
  return p;
}

Status run_gather_elements(KernelContext& ctx) {
  const DeviceTensor& data = ctx.input(0);
  const DeviceTensor& indices = ctx.input(1);
  DeviceTensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(data.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank)
    return ctx.error("axis {} is out of range for the data {}", axis, dims_to_string(data.dims));
  if (rank > kMaxDims) return ctx.error("rank {} is above {}", rank, kMaxDims);
  if (indices.rank() != data.rank())
    return ctx.error("indices {} and data {} must have the same rank", dims_to_string(indices.dims),
                     dims_to_string(data.dims));
  const int64_t n = out.numel();
  if (n == 0) return Status();
  std::optional<Status> st = ew::dispatch_bytes(dtype_size(data.dtype), [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    std::optional<Status> s2 = ew::dispatch_int(indices.dtype, [&](auto itag) -> Status {
      using X = typename decltype(itag)::type;
      const U* d = static_cast<const U*>(data.data);
      const X* x = static_cast<const X*>(indices.data);
      U* o = static_cast<U*>(out.data);
      if (copy::fits32(n)) {
        gather_elements_kernel<U, X, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            d, x, o, static_cast<uint32_t>(n), elem_params<uint32_t>(data.dims, indices.dims, axis));
      } else {
        gather_elements_kernel<U, X, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            d, x, o, static_cast<uint64_t>(n), elem_params<uint64_t>(data.dims, indices.dims, axis));
      }
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    });
    return s2 ? std::move(*s2) : ctx.error("indices dtype {} is not supported", dtype_name(indices.dtype));
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(data.dtype));
}

// ---- GatherND: per index tuple (the last indices dim, k long) copy one slice of `slice` units.
struct NdParams {
  int k = 0;
  int64_t dims[kMaxDims] = {};     // data dims b .. b+k-1
  int64_t strides[kMaxDims] = {};  // their strides, in units
  int64_t per_batch = 1, batch_units = 0;
};

template <class U, class X, class I>
__global__ void __launch_bounds__(copy::kThreads)
    gather_nd_kernel(const U* __restrict__ data, const X* __restrict__ idx, U* __restrict__ out, I n,
                     DivOf<I> slice, NdParams p) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const I t = slice.div(i);
    const I e = i - t * static_cast<I>(slice.d);
    int64_t off = (static_cast<int64_t>(t) / p.per_batch) * p.batch_units;
    bool ok = true;
    for (int j = 0; j < p.k; ++j) {
      const int64_t v = norm_index(static_cast<int64_t>(idx[static_cast<int64_t>(t) * p.k + j]), p.dims[j]);
      ok = ok && v >= 0;
      off += v * p.strides[j];
    }
    out[i] = ok ? data[off + e] : U{};
  }
}

Status run_gather_nd(KernelContext& ctx) {
  const DeviceTensor& data = ctx.input(0);
  const DeviceTensor& indices = ctx.input(1);
  DeviceTensor& out = ctx.output(0);
  const int64_t b = ctx.node().attr_int("batch_dims", 0);
  const int64_t q = static_cast<int64_t>(indices.rank());
  if (q < 1) return ctx.error("indices {} must have rank >= 1", dims_to_string(indices.dims));
  const int64_t k = indices.dims[q - 1];
  const int64_t r = static_cast<int64_t>(data.rank());
  if (b < 0 || b + k > r || k > kMaxDims)
    return ctx.error("index tuples of length {} with batch_dims {} do not fit the data {}", k, b,
                     dims_to_string(data.dims));
  const int64_t n_elems = out.numel();
  if (n_elems == 0) return Status();
  const int64_t slice = copy::product(data.dims, b + k, r);
  const size_t es = dtype_size(data.dtype);
  const size_t unit = copy::widest_unit(es, {slice}, {data.data, out.data});
  const int64_t w = static_cast<int64_t>(unit / es);
  NdParams p;
  p.k = static_cast<int>(k);
  const std::vector<int64_t> s = copy::strides_of(data.dims);
  for (int64_t j = 0; j < k; ++j) p.dims[j] = data.dims[b + j], p.strides[j] = s[b + j] / w;
  p.per_batch = std::max<int64_t>(copy::product(indices.dims, b, q - 1), 1);
  p.batch_units = copy::product(data.dims, b, r) / w;
  const int64_t n = n_elems / w;
  std::optional<Status> st = copy::dispatch_units(unit, [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    std::optional<Status> s2 = ew::dispatch_int(indices.dtype, [&](auto itag) -> Status {
      using X = typename decltype(itag)::type;
      const U* d = static_cast<const U*>(data.data);
      const X* x = static_cast<const X*>(indices.data);
      U* o = static_cast<U*>(out.data);
      if (copy::fits32(n)) {
        gather_nd_kernel<U, X, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            d, x, o, static_cast<uint32_t>(n), ew::DivU32(static_cast<uint32_t>(slice / w)), p);
      } else {
        gather_nd_kernel<U, X, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            d, x, o, static_cast<uint64_t>(n), ew::DivU64(static_cast<uint64_t>(slice / w)), p);
      }
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    });
    return s2 ? std::move(*s2) : ctx.error("indices dtype {} is not supported", dtype_name(indices.dtype));
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(data.dtype));
}

}  // namespace

void register_cuda_gather(KernelTable& t) {
  t.add({"Gather", run_gather, data_and_index});
  t.add({"GatherElements", run_gather_elements, data_and_index});
  t.add({"GatherND", run_gather_nd, data_and_index});
}

}  // namespace kiln::cuda
