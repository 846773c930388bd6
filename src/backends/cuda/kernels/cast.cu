// Cast / CastLike between f32, f16, bf16, i32, i64, bool, u8 and i8 with the CPU's conversion rules
// (src/backends/cpu/convert.cpp): integer -> integer wraps through int64; everything else goes through double;
// float -> integer truncates, NaN gives 0 and out-of-range values clamp; -> bool is "!= 0" (NaN is true);
// -> f16/bf16 rounds through f32 to nearest even. And Expand: a broadcast copy by element width.
#include <limits>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/ew_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

template <DType D>
struct Storage;
template <> struct Storage<DType::kF32> { using T = float; };
template <> struct Storage<DType::kF16> { using T = __half; };
template <> struct Storage<DType::kBF16> { using T = __nv_bfloat16; };
template <> struct Storage<DType::kI32> { using T = int32_t; };
template <> struct Storage<DType::kI64> { using T = int64_t; };
template <> struct Storage<DType::kBool> { using T = uint8_t; };
template <> struct Storage<DType::kU8> { using T = uint8_t; };
template <> struct Storage<DType::kI8> { using T = int8_t; };

constexpr bool is_int_kind(DType d) {
  return d == DType::kI32 || d == DType::kI64 || d == DType::kU8 || d == DType::kI8;
}

template <DType F, DType T>
struct CastOp {
  using SF = typename Storage<F>::T;
  using ST = typename Storage<T>::T;

  // The source value exactly as Tensor::get_as_double reads it.
  __device__ __forceinline__ static double as_double(SF v) {
    if constexpr (F == DType::kBool) return v ? 1.0 : 0.0;
    else if constexpr (F == DType::kF16 || F == DType::kBF16) return static_cast<double>(Num<SF>::load(v));
    else return static_cast<double>(v);
  }

  __device__ __forceinline__ ST operator()(SF v) const {
    if constexpr (T == DType::kBool) {
      return as_double(v) != 0.0 ? 1 : 0;
    } else if constexpr (is_int_kind(F) && is_int_kind(T)) {
      return static_cast<ST>(static_cast<int64_t>(v));  // wraps, like static_cast<T>(get_as_int)
    } else {
      const double d = as_double(v);
      if constexpr (T == DType::kF32) {
        return static_cast<float>(d);
      } else if constexpr (T == DType::kF16) {
        return __float2half_rn(static_cast<float>(d));
      } else if constexpr (T == DType::kBF16) {
        return __float2bfloat16_rn(static_cast<float>(d));
      } else {  // -> integer from float or bool
        if (isnan(d)) return ST(0);
        constexpr double kLo = static_cast<double>(std::numeric_limits<ST>::lowest());
        constexpr double kHi = static_cast<double>(std::numeric_limits<ST>::max());
        if (d <= kLo) return std::numeric_limits<ST>::lowest();
        if (d >= kHi) return std::numeric_limits<ST>::max();
        return static_cast<ST>(d);
      }
    }
  }
};

template <class Fn>
std::optional<Status> dispatch_cast_dtype(DType d, Fn&& fn) {
  switch (d) {
    case DType::kF32: return fn(std::integral_constant<DType, DType::kF32>{});
    case DType::kF16: return fn(std::integral_constant<DType, DType::kF16>{});
    case DType::kBF16: return fn(std::integral_constant<DType, DType::kBF16>{});
    case DType::kI32: return fn(std::integral_constant<DType, DType::kI32>{});
    case DType::kI64: return fn(std::integral_constant<DType, DType::kI64>{});
    case DType::kBool: return fn(std::integral_constant<DType, DType::kBool>{});
    case DType::kU8: return fn(std::integral_constant<DType, DType::kU8>{});
    case DType::kI8: return fn(std::integral_constant<DType, DType::kI8>{});
    default: return std::nullopt;
  }
}

bool cast_dtype_ok(DType d) {
  return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16 || d == DType::kI32 || d == DType::kI64 ||
         d == DType::kBool || d == DType::kU8 || d == DType::kI8;
}

Status run_cast(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  if (x.dtype == y.dtype) {  // same dtype: the CPU copies; aliasing is the same value with no traffic
    alias_input(ctx, 0);
    return Status();
  }
  auto unsupported = [&] {
    return ctx.error("cast from {} to {} is not supported", dtype_name(x.dtype), dtype_name(y.dtype));
  };
  std::optional<Status> st = dispatch_cast_dtype(x.dtype, [&](auto from) {
    std::optional<Status> r = dispatch_cast_dtype(y.dtype, [&](auto to) {
      constexpr DType F = decltype(from)::value;
      constexpr DType T = decltype(to)::value;
      if constexpr (F != T) {
        return launch_unary<typename Storage<F>::T, typename Storage<T>::T>(CastOp<F, T>{}, x.data, y.data,
                                                                           x.numel(), ctx.stream());
      } else {
        return Status();  // not reached: equal dtypes alias above
      }
    });
    return r ? std::move(*r) : unsupported();
  });
  return st ? std::move(*st) : unsupported();
}

bool cast_supported(const ir::Node& n, const std::vector<DType>& d) {
  if (d.empty() || !cast_dtype_ok(d[0])) return false;
  auto to = dtype_from_onnx(static_cast<int32_t>(n.attr_int("to", -1)));
  return to && cast_dtype_ok(*to);
}
bool cast_like_supported(const ir::Node&, const std::vector<DType>& d) {
  return d.size() == 2 && cast_dtype_ok(d[0]) && cast_dtype_ok(d[1]);
}

// ---- Expand.
template <class I, class U>
__global__ void __launch_bounds__(kThreads)
    expand_kernel(const U* __restrict__ in, U* __restrict__ out, I n, Indexer<1, I> ix) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    I off[1];
    ix.offsets(i, off);
    out[i] = in[off[0]];
  }
}

// Innermost dim a multiple of VEC with input stride 0 or 1 there: VEC outputs per index computation.
template <int VEC, class U>
__global__ void __launch_bounds__(kThreads)
    expand_vec_kernel(const U* __restrict__ in, U* __restrict__ out, uint32_t nvec, Indexer<1, uint32_t> ix,
                      bool rep) {
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t v = blockIdx.x * blockDim.x + threadIdx.x; v < nvec; v += stride) {
    const uint32_t i = v * VEC;
    uint32_t off[1];
    ix.offsets(i, off);
    Pack<U, VEC> p;
    if (rep) {
      const U s = in[off[0]];
#pragma unroll
      for (int k = 0; k < VEC; ++k) p.v[k] = s;
    } else {
      p = *reinterpret_cast<const Pack<U, VEC>*>(in + off[0]);
    }
    *reinterpret_cast<Pack<U, VEC>*>(out + i) = p;
  }
}

Status run_expand(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  const int64_t n = y.numel();
  if (n <= 0) return Status();
  if (x.numel() == n) {  // only leading 1s added: same elements in the same order
    alias_input(ctx, 0);
    return Status();
  }
  const Layout<1> L = make_layout<1>(y.dims, {&x.dims});
  if (!L.ok)
    return ctx.error("cannot expand {} to {} (or more than {} dims after merging)", dims_to_string(x.dims),
                     dims_to_string(y.dims), kMaxRank);
  std::optional<Status> st = dispatch_bytes(dtype_size(x.dtype), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* pi = static_cast<const U*>(x.data);
    U* po = static_cast<U*>(y.data);
    constexpr int VEC = static_cast<int>(16 / sizeof(U));
    const bool rep = L.strides[0][0] == 0;
    if (L.fits32 && L.dims[0] % VEC == 0 && (rep || aligned_to(pi, 16)) && aligned_to(po, 16)) {
      expand_vec_kernel<VEC, U><<<blocks_for(n / VEC), kThreads, 0, ctx.stream()>>>(
          pi, po, static_cast<uint32_t>(n / VEC), make_indexer<1, uint32_t>(L), rep);
    } else if (L.fits32) {
      expand_kernel<uint32_t, U><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(pi, po, static_cast<uint32_t>(n),
                                                                              make_indexer<1, uint32_t>(L));
    } else {
      expand_kernel<uint64_t, U><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(pi, po, static_cast<uint64_t>(n),
                                                                              make_indexer<1, uint64_t>(L));
    }
    return cuda_status(cudaGetLastError(), "expand_kernel launch", __FILE__, __LINE__);
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(x.dtype));
}

bool expand_supported(const ir::Node&, const std::vector<DType>& d) {
  if (d.empty()) return false;
  const size_t sz = dtype_size(d[0]);
  return sz == 1 || sz == 2 || sz == 4 || sz == 8;
}

}  // namespace

void register_cuda_cast(KernelTable& t) {
  t.add({"Cast", run_cast, cast_supported});
  t.add({"CastLike", run_cast, cast_like_supported});
  // The target shape is read on the host (inference already used it for the output dims).
  t.add({"Expand", run_expand, expand_supported, 0b10});
}

}  // namespace kiln::cuda
