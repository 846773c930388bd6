// Tile: output coordinate c reads input coordinate c % dim on every axis, by element width. The repeats input
// is read on the host (inference sizes the output from it).
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

using copy::kMaxDims;

struct TileDims {
  int64_t in_dims[kMaxDims] = {};  // innermost first
  int64_t strides[kMaxDims] = {};  // input strides, innermost first
};

template <class U, class I>
__global__ void __launch_bounds__(copy::kThreads)
    tile_kernel(const U* __restrict__ src, U* __restrict__ dst, I n, copy::Coords<I> coords, TileDims t) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t c[kMaxDims];
    coords.of(i, c);
    int64_t off = 0;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d)
      if (d < coords.rank) off += (c[d] % t.in_dims[d]) * t.strides[d];
    dst[i] = src[off];
  }
}

Status run_tile(KernelContext& ctx) {
  const DeviceTensor& in = ctx.input(0);
  DeviceTensor& out = ctx.output(0);
  const int64_t n = out.numel();
  if (n == 0) return Status();
  if (out.rank() != in.rank())
    return ctx.error("output {} and input {} ranks differ", dims_to_string(out.dims),
                     dims_to_string(in.dims));
  // An axis that is not repeated merges into the axis before it: (c0 * d1 + c1) % (d0 * d1) reads the same
  // element as (c0 % d0, c1), so the modulo runs on whole rows.
  std::vector<int64_t> id, od;
  for (size_t d = 0; d < in.rank(); ++d) {
    if (!id.empty() && out.dims[d] == in.dims[d]) {
      id.back() *= in.dims[d];
      od.back() *= out.dims[d];
      continue;
    }
    id.push_back(in.dims[d]);
    od.push_back(out.dims[d]);
  }
  if (id.size() > static_cast<size_t>(kMaxDims))
    return ctx.error("rank {} is above {} after merging", id.size(), kMaxDims);
  TileDims t;
  const std::vector<int64_t> s = copy::strides_of(id);
  const size_t r = id.size();
  for (size_t d = 0; d < r; ++d) t.in_dims[r - 1 - d] = id[d], t.strides[r - 1 - d] = s[d];
  std::optional<Status> st = ew::dispatch_bytes(dtype_size(in.dtype), [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    const U* src = static_cast<const U*>(in.data);
    U* dst = static_cast<U*>(out.data);
    if (copy::fits32(n)) {
      tile_kernel<U, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
          src, dst, static_cast<uint32_t>(n), copy::make_coords<uint32_t>(od), t);
    } else {
      tile_kernel<U, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
          src, dst, static_cast<uint64_t>(n), copy::make_coords<uint64_t>(od), t);
    }
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(in.dtype));
}

}  // namespace

void register_cuda_tile(KernelTable& t) {
  t.add({"Tile", run_tile, copy::movable_first, 0b10});
}

}  // namespace kiln::cuda
