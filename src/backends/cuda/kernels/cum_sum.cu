// CumSum (inclusive/exclusive, forward/reverse) along one axis, with the CPU reference's accumulation: floats
// in double (f16/bf16 through f32), integers in 64 bits, each line summed in order by one thread. Threads of
// a warp take neighbouring lines of the inner dims, so their loads and stores are coalesced. The axis is read
// on the host.
#include <type_traits>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

template <class T>
struct Acc {
  using A = std::conditional_t<std::is_floating_point_v<T>, double,
                               std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
  __device__ __forceinline__ static A load(T v) { return static_cast<A>(v); }
  __device__ __forceinline__ static T store(A v) { return static_cast<T>(v); }
};
template <>
struct Acc<__half> {
  using A = double;
  __device__ __forceinline__ static A load(__half v) { return static_cast<double>(__half2float(v)); }
  __device__ __forceinline__ static __half store(A v) { return __float2half_rn(static_cast<float>(v)); }
};
template <>
struct Acc<__nv_bfloat16> {
  using A = double;
  __device__ __forceinline__ static A load(__nv_bfloat16 v) {
    return static_cast<double>(__bfloat162float(v));
  }
  __device__ __forceinline__ static __nv_bfloat16 store(A v) {
    return __float2bfloat16_rn(static_cast<float>(v));
  }
};

template <class T>
__global__ void __launch_bounds__(copy::kThreads)
    cum_sum_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t lines, int64_t inner, int64_t n,
                   bool exclusive, bool reverse) {
  using A = typename Acc<T>::A;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t l = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; l < lines; l += stride) {
    const int64_t o = l / inner, i = l - o * inner;
    const int64_t first = o * n * inner + i;
    A acc = 0;
    for (int64_t step = 0; step < n; ++step) {
      const int64_t at = first + (reverse ? n - 1 - step : step) * inner;
      const A v = Acc<T>::load(x[at]);
      if (exclusive) {
        y[at] = Acc<T>::store(acc);
        acc += v;
      } else {
        acc += v;
        y[at] = Acc<T>::store(acc);
      }
    }
  }
}

template <class Fn>
std::optional<Status> dispatch_cum(DType dt, Fn&& fn) {
  return ew::dispatch_in<DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI32, DType::kI64, DType::kU32, DType::kU64>(dt, fn);
}

bool cum_sum_dtypes(const ir::Node&, const std::vector<DType>& d) {
  if (d.empty()) return false;
  return dispatch_cum(d[0], [](auto) { return Status(); }).has_value();
}

Status run_cum_sum(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  const Tensor* at = ctx.host_input(1);
  if (!at || at->numel() != 1) return ctx.error("axis must be a single value");
  int64_t axis = at->get_as_int(0);
  if (axis < -rank || axis >= rank || rank == 0)
    return ctx.error("axis {} is out of range for the input {}", axis, dims_to_string(x.dims));
  if (axis < 0) axis += rank;
  const bool exclusive = ctx.node().attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.node().attr_int("reverse", 0) != 0;
  const int64_t outer = copy::product(x.dims, 0, axis);
  const int64_t inner = copy::product(x.dims, axis + 1, rank);
  const int64_t n = x.dims[axis];
  const int64_t lines = outer * inner;
  if (lines * n == 0) return Status();
  std::optional<Status> st = dispatch_cum(x.dtype, [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    cum_sum_kernel<T><<<copy::blocks_for(lines), copy::kThreads, 0, ctx.stream()>>>(
        static_cast<const T*>(x.data), static_cast<T*>(y.data), lines, inner, n, exclusive, reverse);
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(x.dtype));
}

}  // namespace

void register_cuda_cum_sum(KernelTable& t) {
  t.add({"CumSum", run_cum_sum, cum_sum_dtypes, 0b10});
}

}  // namespace kiln::cuda
