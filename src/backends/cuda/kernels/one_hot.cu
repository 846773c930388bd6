// OneHot: output [outer, depth, inner] from indices [outer, inner] (depth inserted at axis); each element is
// the 'on' value where its depth coordinate equals the (wrapped) index and 'off' elsewhere; an index outside
// [-depth, depth) gives an all-off line, as in the CPU reference. depth is read on the host; values (off, on)
// stay on the device, by element width.
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

template <class U, class X, class I>
__global__ void __launch_bounds__(copy::kThreads)
    one_hot_kernel(const X* __restrict__ idx, const U* __restrict__ values, U* __restrict__ out, I n,
                   ew::DivOf<I> inner, ew::DivOf<I> depth) {
  const U off = values[0], on = values[1];
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const I t = inner.div(i);
    const I in = i - t * static_cast<I>(inner.d);
    const I o = depth.div(t);
    const int64_t d = static_cast<int64_t>(t - o * static_cast<I>(depth.d));
    // The CPU reference reads the index as a double and truncates it toward zero.
    int64_t v = static_cast<int64_t>(static_cast<double>(idx[static_cast<int64_t>(o) * inner.d + in]));
    if (v < 0) v += static_cast<int64_t>(depth.d);
    out[i] = v == d ? on : off;
  }
}

template <class Fn>
std::optional<Status> dispatch_index(DType dt, Fn&& fn) {
  return ew::dispatch_in<DType::kI32, DType::kI64, DType::kF32, DType::kF64>(dt, fn);
}

bool one_hot_dtypes(const ir::Node&, const std::vector<DType>& d) {
  if (d.size() != 3 || !copy::movable(d[2])) return false;
  return dispatch_index(d[0], [](auto) { return Status(); }).has_value();
}

Status run_one_hot(KernelContext& ctx) {
  const DeviceTensor& indices = ctx.input(0);
  const DeviceTensor& values = ctx.input(2);
  DeviceTensor& out = ctx.output(0);
  if (values.numel() != 2)
    return ctx.error("values {} must hold two elements (off, on)", dims_to_string(values.dims));
  const int64_t out_rank = static_cast<int64_t>(out.rank());
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < 0) axis += out_rank;
  if (axis < 0 || axis >= out_rank) return ctx.error("axis {} is out of range for rank {}", axis, out_rank);
  const int64_t depth = out.dims[axis];
  const int64_t inner = copy::product(indices.dims, axis, indices.rank());
  const int64_t n = out.numel();
  if (n == 0) return Status();
  std::optional<Status> st = ew::dispatch_bytes(dtype_size(values.dtype), [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    std::optional<Status> s2 = dispatch_index(indices.dtype, [&](auto itag) -> Status {
      using X = typename decltype(itag)::type;
      const X* x = static_cast<const X*>(indices.data);
      const U* v = static_cast<const U*>(values.data);
      U* o = static_cast<U*>(out.data);
      if (copy::fits32(n)) {
        one_hot_kernel<U, X, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            x, v, o, static_cast<uint32_t>(n), ew::DivU32(static_cast<uint32_t>(inner)),
            ew::DivU32(static_cast<uint32_t>(depth)));
      } else {
        one_hot_kernel<U, X, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
            x, v, o, static_cast<uint64_t>(n), ew::DivU64(static_cast<uint64_t>(inner)),
            ew::DivU64(static_cast<uint64_t>(depth)));
      }
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    });
    return s2 ? std::move(*s2) : ctx.error("indices dtype {} is not supported", dtype_name(indices.dtype));
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(values.dtype));
}

}  // namespace

void register_cuda_one_hot(KernelTable& t) {
  t.add({"OneHot", run_one_hot, one_hot_dtypes, 0b10});
}

}  // namespace kiln::cuda
