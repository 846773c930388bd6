// Range and ConstantOfShape: outputs computed from a few host values. Range's start/limit/delta are read on
// the host (inference needs them there to size the output; the executor keeps integer Range on small host
// values as host shape math, so this kernel serves float ranges and inputs that live on the device). Values
// are start + i * delta in the output type, as the CPU reference computes them (f16/bf16 through f32), with
// the multiply and add rounded separately (no fused multiply-add) so both agree to the bit.
#include <cstring>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

template <class T>
struct RangeMath {
  using C = T;
  __device__ __forceinline__ static T at(C start, C delta, int64_t i) {
    return static_cast<T>(start + static_cast<T>(i) * delta);
  }
};
template <>
struct RangeMath<float> {
  using C = float;
  __device__ __forceinline__ static float at(float start, float delta, int64_t i) {
    return __fadd_rn(start, __fmul_rn(static_cast<float>(i), delta));
  }
};
template <>
struct RangeMath<double> {
  using C = double;
  __device__ __forceinline__ static double at(double start, double delta, int64_t i) {
    return __dadd_rn(start, __dmul_rn(static_cast<double>(i), delta));
  }
};
template <>
struct RangeMath<__half> {
  using C = float;
  __device__ __forceinline__ static __half at(float start, float delta, int64_t i) {
    return __float2half_rn(RangeMath<float>::at(start, delta, i));
  }
};
template <>
struct RangeMath<__nv_bfloat16> {
  using C = float;
  __device__ __forceinline__ static __nv_bfloat16 at(float start, float delta, int64_t i) {
    return __float2bfloat16_rn(RangeMath<float>::at(start, delta, i));
  }
};

template <class T>
__global__ void __launch_bounds__(copy::kThreads)
    range_kernel(T* __restrict__ out, int64_t n, typename RangeMath<T>::C start,
                 typename RangeMath<T>::C delta) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = RangeMath<T>::at(start, delta, i);
}

template <class Fn>
std::optional<Status> dispatch_range(DType dt, Fn&& fn) {
  return ew::dispatch_in<DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI16, DType::kI32, DType::kI64>(dt, fn);
}

bool range_dtypes(const ir::Node&, const std::vector<DType>& d) {
  if (d.size() != 3 || d[1] != d[0] || d[2] != d[0]) return false;
  return dispatch_range(d[0], [](auto) { return Status(); }).has_value();
}

// The first element of a host scalar in the compute type (f16/bf16 widened to f32).
template <class C>
C host_scalar(const Tensor& t) {
  if (t.dtype() == DType::kF16 || t.dtype() == DType::kBF16) return static_cast<C>(t.get_as_double(0));
  C v;
  std::memcpy(&v, t.raw(), sizeof(C));
  return v;
}

Status run_range(KernelContext& ctx) {
  DeviceTensor& out = ctx.output(0);
  const Tensor* start = ctx.host_input(0);
  const Tensor* delta = ctx.host_input(2);
  if (!start || !delta || start->numel() != 1 || delta->numel() != 1)
    return ctx.error("start, limit and delta must be single values");
  const int64_t n = out.numel();
  if (n == 0) return Status();
  std::optional<Status> st = dispatch_range(out.dtype, [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    using C = typename RangeMath<T>::C;
    range_kernel<T><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
        static_cast<T*>(out.data), n, host_scalar<C>(*start), host_scalar<C>(*delta));
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(out.dtype));
}

// ---- ConstantOfShape: every element is the 'value' attribute's one element (default f32 zero).
template <class U>
__global__ void __launch_bounds__(copy::kThreads) fill_kernel(U* __restrict__ out, int64_t n, U v) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = v;
}

Status run_constant_of_shape(KernelContext& ctx) {
  DeviceTensor& out = ctx.output(0);
  const int64_t n = out.numel();
  if (n == 0) return Status();
  const size_t es = dtype_size(out.dtype);
  uint64_t bits = 0;
  if (const auto* a = ctx.node().attr("value")) {
    if (a->t.numel() != 1 || a->t.dtype() != out.dtype)
      return ctx.error("value {} must be one element of the output dtype {}", a->t.describe(),
                       dtype_name(out.dtype));
    std::memcpy(&bits, a->t.raw(), es);
  }
  if (bits == 0) {
    KILN_CUDA_CHECK(cudaMemsetAsync(out.data, 0, out.nbytes(), ctx.stream()));
    return Status();
  }
  std::optional<Status> st = ew::dispatch_bytes(es, [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    U v;
    std::memcpy(&v, &bits, sizeof(U));
    fill_kernel<U><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(static_cast<U*>(out.data), n, v);
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(out.dtype));
}

bool constant_of_shape_supported(const ir::Node& node, const std::vector<DType>&) {
  const auto* a = node.attr("value");
  return !a || copy::movable(a->t.dtype());
}

}  // namespace

void register_cuda_range_fill(KernelTable& t) {
  t.add({"Range", run_range, range_dtypes, 0b111});
  t.add({"ConstantOfShape", run_constant_of_shape, constant_of_shape_supported, 0b1});
}

}  // namespace kiln::cuda
