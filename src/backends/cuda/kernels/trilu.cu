// Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of every matrix in the last two dims and
// zeroes the rest (all-zero bytes are 0 in every dtype), by element width. k is read on the host.
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

template <class U, class I>
__global__ void __launch_bounds__(copy::kThreads)
    trilu_kernel(const U* __restrict__ src, U* __restrict__ dst, I n, ew::DivOf<I> cols, ew::DivOf<I> rows,
                 int64_t k, bool upper) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const I t = cols.div(i);
    const int64_t j = static_cast<int64_t>(i - t * static_cast<I>(cols.d));
    const int64_t r = static_cast<int64_t>(t - rows.div(t) * static_cast<I>(rows.d));
    const bool keep = upper ? j - r >= k : j - r <= k;
    dst[i] = keep ? src[i] : U{};
  }
}

Status run_trilu(KernelContext& ctx) {
  const DeviceTensor& in = ctx.input(0);
  DeviceTensor& out = ctx.output(0);
  if (in.rank() < 2) return ctx.error("input {} must have rank >= 2", dims_to_string(in.dims));
  const int64_t n = out.numel();
  if (n == 0) return Status();
  const bool upper = ctx.node().attr_int("upper", 1) != 0;
  int64_t k = 0;
  if (ctx.has_input(1)) {
    const Tensor* kt = ctx.host_input(1);
    if (!kt || kt->numel() != 1) return ctx.error("k must be a single value");
    k = kt->get_as_int(0);
  }
  const int64_t rows = in.dims[in.rank() - 2], cols = in.dims[in.rank() - 1];
  std::optional<Status> st = ew::dispatch_bytes(dtype_size(in.dtype), [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    const U* src = static_cast<const U*>(in.data);
    U* dst = static_cast<U*>(out.data);
    if (copy::fits32(n)) {
      trilu_kernel<U, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
          src, dst, static_cast<uint32_t>(n), ew::DivU32(static_cast<uint32_t>(cols)),
          ew::DivU32(static_cast<uint32_t>(rows)), k, upper);
    } else {
      trilu_kernel<U, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
          src, dst, static_cast<uint64_t>(n), ew::DivU64(static_cast<uint64_t>(cols)),
          ew::DivU64(static_cast<uint64_t>(rows)), k, upper);
    }
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(in.dtype));
}

}  // namespace

void register_cuda_trilu(KernelTable& t) {
  t.add({"Trilu", run_trilu, copy::movable_first, 0b10});
}

}  // namespace kiln::cuda
