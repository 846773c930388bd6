// Broadcasting binary and variadic elementwise ops, matching src/backends/cpu/kernels/binary_elementwise.cpp:
// arithmetic (integer division/modulo by zero gives 0; integer overflow wraps), Pow (mixed exponent dtype),
// Max/Min (NaN-propagating), Sum/Mean (accumulated in the compute type, in input order), PRelu, comparisons and
// logic (bool out). Layouts are collapsed first: same-shape and scalar operands take a flat vectorized path,
// everything else an indexer with 32-bit fast division where indices fit.
#include <cmath>
#include <string>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/ew_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

constexpr int kMaxVariadic = 16;  // inputs of one Max/Min/Sum/Mean node run on the GPU

enum class B { kAdd, kSub, kMul, kDiv, kMax, kMin, kMean2, kMod, kFMod, kPRelu };
enum class Cmp { kEq, kLt, kGt, kLe, kGe, kAnd, kOr, kXor };

template <class C>
__device__ __forceinline__ C wrap_add(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}
template <class C>
__device__ __forceinline__ C wrap_sub(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) - static_cast<U>(b));
  } else {
    return a - b;
  }
}
template <class C>
__device__ __forceinline__ C wrap_mul(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) * static_cast<U>(b));
  } else {
    return a * b;
  }
}

// Arithmetic on compute values (float, int32_t, int64_t).
template <B OP>
struct Arith {
  template <class C>
  __device__ __forceinline__ C operator()(C a, C b) const {
    constexpr bool kInt = std::is_integral_v<C>;
    if constexpr (OP == B::kAdd) {
      return wrap_add(a, b);
    } else if constexpr (OP == B::kSub) {
      return wrap_sub(a, b);
    } else if constexpr (OP == B::kMul) {
      return wrap_mul(a, b);
    } else if constexpr (OP == B::kDiv) {
      if constexpr (kInt) {
        if (b == 0) return C(0);                      // integer division by zero: 0
        if (b == C(-1)) return wrap_sub(C(0), a);     // no overflow trap for MIN / -1
        return static_cast<C>(a / b);
      } else {
        return a / b;
      }
    } else if constexpr (OP == B::kMax || OP == B::kMin) {
      if constexpr (!kInt) {
        if (isnan(a) || isnan(b)) return __int_as_float(0x7fc00000);  // quiet NaN
      }
      if constexpr (OP == B::kMax) return a > b ? a : b;
      else return a < b ? a : b;
    } else if constexpr (OP == B::kMean2) {
      return static_cast<C>(wrap_add(a, b) / C(2));
    } else if constexpr (OP == B::kMod || OP == B::kFMod) {
      if constexpr (kInt) {
        if (b == 0 || b == C(-1)) return C(0);  // x % -1 == 0 (and MIN % -1 must not trap)
        C r = static_cast<C>(a % b);
        if constexpr (OP == B::kMod) {
          if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<C>(r + b);
        }
        return r;
      } else {
        float r = fmodf(a, b);
        if constexpr (OP == B::kMod) {
          if (r != 0.f && ((r < 0.f) != (b < 0.f))) r += b;
        }
        return r;
      }
    } else {  // kPRelu: a = x, b = slope
      return a < C(0) ? wrap_mul(a, b) : a;
    }
  }
};

template <Cmp OP>
struct Compare {
  template <class C>
  __device__ __forceinline__ bool operator()(C a, C b) const {
    if constexpr (OP == Cmp::kEq) return a == b;
    else if constexpr (OP == Cmp::kLt) return a < b;
    else if constexpr (OP == Cmp::kGt) return a > b;
    else if constexpr (OP == Cmp::kLe) return a <= b;
    else if constexpr (OP == Cmp::kGe) return a >= b;
    else if constexpr (OP == Cmp::kAnd) return (a != C(0)) && (b != C(0));
    else if constexpr (OP == Cmp::kOr) return (a != C(0)) || (b != C(0));
    else return (a != C(0)) != (b != C(0));
  }
};

// a^b: the CPU computes pow in double and casts. Float bases use powf (x*x for the common b == 2, which is
// exactly what the rounded double gives); integer bases stay in double, with integer exponents by repeated
// squaring so exact integer powers never come out one below (then truncated) as a 1-ulp pow could give.
struct PowOp {
  template <class CA, class CB>
  __device__ __forceinline__ CA operator()(CA a, CB b) const {
    if constexpr (std::is_integral_v<CA>) {
      const double x = static_cast<double>(a), e = static_cast<double>(b);
      double r;
      if (e >= 0.0 && e <= 4096.0 && e == floor(e)) {
        r = 1.0;
        double base = x;
        unsigned k = static_cast<unsigned>(e);
        while (k) {
          if (k & 1u) r *= base;
          base *= base;
          k >>= 1;
        }
      } else {
        r = pow(x, e);
      }
      return static_cast<CA>(r);
    } else {
      const float e = static_cast<float>(b);
      if (e == 2.0f) return a * a;
      if (e == 1.0f) return a;
      return powf(a, e);
    }
  }
};

// Storage adapters: load to compute type, apply, store.
template <class Op, class TA, class TB, class TO>
struct BinMap {
  Op op;
  __device__ __forceinline__ TO operator()(TA a, TB b) const {
    return Num<TO>::store(op(Num<TA>::load(a), Num<TB>::load(b)));
  }
};
template <class Op, class T>
struct CmpMap {
  Op op;
  __device__ __forceinline__ uint8_t operator()(T a, T b) const {
    return op(Num<T>::load(a), Num<T>::load(b)) ? 1 : 0;
  }
};

// ---- Kernels.
template <int VEC, class F, class TA, class TB, class TO>
__global__ void __launch_bounds__(kThreads)
    binary_flat_kernel(F f, const TA* __restrict__ a, const TB* __restrict__ b, TO* __restrict__ y, int64_t n,
                       bool a_scalar, bool b_scalar) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const TA a0 = a[0];  // n > 0, so every operand has an element
  const TB b0 = b[0];
  const int64_t nvec = n / VEC;
  for (int64_t v = t; v < nvec; v += stride) {
    Pack<TA, VEC> pa;
    Pack<TB, VEC> pb;
    if (a_scalar) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) pa.v[k] = a0;
    } else {
      pa = reinterpret_cast<const Pack<TA, VEC>*>(a)[v];
    }
    if (b_scalar) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) pb.v[k] = b0;
    } else {
      pb = reinterpret_cast<const Pack<TB, VEC>*>(b)[v];
    }
    Pack<TO, VEC> r;
#pragma unroll
    for (int k = 0; k < VEC; ++k) r.v[k] = f(pa.v[k], pb.v[k]);
    reinterpret_cast<Pack<TO, VEC>*>(y)[v] = r;
  }
  for (int64_t i = nvec * VEC + t; i < n; i += stride) y[i] = f(a_scalar ? a0 : a[i], b_scalar ? b0 : b[i]);
}

template <class I, class F, class TA, class TB, class TO>
__global__ void __launch_bounds__(kThreads)
    binary_bcast_kernel(F f, const TA* __restrict__ a, const TB* __restrict__ b, TO* __restrict__ y, I n,
                        Indexer<2, I> ix) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    I off[2];
    ix.offsets(i, off);
    y[i] = f(a[off[0]], b[off[1]]);
  }
}

// Broadcast with a vectorizable innermost dim: dims[0] % VEC == 0 and every operand's innermost stride is 1
// (a contiguous run: one vector load) or 0 (one element repeated). Each thread handles VEC outputs per index
// computation; the offsets of a group's first element are multiples of VEC, so the vectors stay aligned.
template <int VEC, class I, class F, class TA, class TB, class TO>
__global__ void __launch_bounds__(kThreads)
    binary_bcast_vec_kernel(F f, const TA* __restrict__ a, const TB* __restrict__ b, TO* __restrict__ y, I nvec,
                            Indexer<2, I> ix, bool a_rep, bool b_rep) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I v = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; v < nvec; v += stride) {
    const I i = v * VEC;
    I off[2];
    ix.offsets(i, off);
    Pack<TA, VEC> pa;
    Pack<TB, VEC> pb;
    if (a_rep) {
      const TA s = a[off[0]];
#pragma unroll
      for (int k = 0; k < VEC; ++k) pa.v[k] = s;
    } else {
      pa = *reinterpret_cast<const Pack<TA, VEC>*>(a + off[0]);
    }
    if (b_rep) {
      const TB s = b[off[1]];
#pragma unroll
      for (int k = 0; k < VEC; ++k) pb.v[k] = s;
    } else {
      pb = *reinterpret_cast<const Pack<TB, VEC>*>(b + off[1]);
    }
    Pack<TO, VEC> r;
#pragma unroll
    for (int k = 0; k < VEC; ++k) r.v[k] = f(pa.v[k], pb.v[k]);
    *reinterpret_cast<Pack<TO, VEC>*>(y + i) = r;
  }
}

template <class T>
struct VarInputs {
  const T* p[kMaxVariadic];
};

// acc = in0; acc = op(acc, in_k) for k = 1..nin-1, in the compute type; Mean divides by mean_div at the end.
template <class I, class Op, class T>
__global__ void __launch_bounds__(kThreads)
    variadic_kernel(Op op, VarInputs<T> in, int nin, T* __restrict__ y, I n, Indexer<kMaxVariadic, I> ix,
                    int mean_div) {
  using C = typename Num<T>::C;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    I off[kMaxVariadic];
    ix.offsets(i, off);
    C acc = Num<T>::load(in.p[0][off[0]]);
#pragma unroll
    for (int k = 1; k < kMaxVariadic; ++k)
      if (k < nin) acc = op(acc, Num<T>::load(in.p[k][off[k]]));
    if (mean_div > 0) acc = static_cast<C>(acc / static_cast<C>(mean_div));
    y[i] = Num<T>::store(acc);
  }
}

// Same, every operand full-size (contiguous) or a single element (bit k of scalar_mask): VEC outputs per
// iteration with 16-byte loads, then a scalar tail.
template <int VEC, class Op, class T>
__global__ void __launch_bounds__(kThreads)
    variadic_flat_kernel(Op op, VarInputs<T> in, int nin, uint32_t scalar_mask, T* __restrict__ y, int64_t n,
                         int mean_div) {
  using C = typename Num<T>::C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nvec = n / VEC;
  auto load = [&](int k, int64_t i) { return Num<T>::load(in.p[k][(scalar_mask >> k) & 1u ? 0 : i]); };
  for (int64_t v = t; v < nvec; v += stride) {
    C acc[VEC];
    if (scalar_mask & 1u) {
      const C s = Num<T>::load(in.p[0][0]);
#pragma unroll
      for (int e = 0; e < VEC; ++e) acc[e] = s;
    } else {
      const Pack<T, VEC> p = reinterpret_cast<const Pack<T, VEC>*>(in.p[0])[v];
#pragma unroll
      for (int e = 0; e < VEC; ++e) acc[e] = Num<T>::load(p.v[e]);
    }
#pragma unroll
    for (int k = 1; k < kMaxVariadic; ++k) {
      if (k >= nin) break;
      if ((scalar_mask >> k) & 1u) {
        const C s = Num<T>::load(in.p[k][0]);
#pragma unroll
        for (int e = 0; e < VEC; ++e) acc[e] = op(acc[e], s);
      } else {
        const Pack<T, VEC> p = reinterpret_cast<const Pack<T, VEC>*>(in.p[k])[v];
#pragma unroll
        for (int e = 0; e < VEC; ++e) acc[e] = op(acc[e], Num<T>::load(p.v[e]));
      }
    }
    Pack<T, VEC> r;
#pragma unroll
    for (int e = 0; e < VEC; ++e) {
      C a = acc[e];
      if (mean_div > 0) a = static_cast<C>(a / static_cast<C>(mean_div));
      r.v[e] = Num<T>::store(a);
    }
    reinterpret_cast<Pack<T, VEC>*>(y)[v] = r;
  }
  for (int64_t i = nvec * VEC + t; i < n; i += stride) {
    C acc = load(0, i);
#pragma unroll
    for (int k = 1; k < kMaxVariadic; ++k)
      if (k < nin) acc = op(acc, load(k, i));
    if (mean_div > 0) acc = static_cast<C>(acc / static_cast<C>(mean_div));
    y[i] = Num<T>::store(acc);
  }
}

// ---- Launchers.
template <class TA, class TB, class TO, class F>
Status launch_binary(const KernelContext& ctx, F f, const void* a, const std::vector<int64_t>& a_dims, const void* b,
                     const std::vector<int64_t>& b_dims, DeviceTensor& y) {
  const int64_t n = y.numel();
  if (n <= 0) return Status();
  const Layout<2> L = make_layout<2>(y.dims, {&a_dims, &b_dims});
  if (!L.ok)
    return ctx.error("cannot broadcast {} and {} to {} (or more than {} dims after merging)", dims_to_string(a_dims),
                     dims_to_string(b_dims), dims_to_string(y.dims), kMaxRank);
  const TA* pa = static_cast<const TA*>(a);
  const TB* pb = static_cast<const TB*>(b);
  TO* py = static_cast<TO*>(y.data);
  cudaStream_t s = ctx.stream();
  constexpr size_t kWidest = std::max({sizeof(TA), sizeof(TB), sizeof(TO)});
  constexpr int VEC = static_cast<int>(16 / kWidest);
  if (L.rank == 1) {
    const bool as = L.strides[0][0] == 0, bs = L.strides[1][0] == 0;
    const bool vec_ok = (as || aligned_to(pa, VEC * sizeof(TA))) && (bs || aligned_to(pb, VEC * sizeof(TB))) &&
                        aligned_to(py, VEC * sizeof(TO));
    if (vec_ok) {
      binary_flat_kernel<VEC, F, TA, TB, TO>
          <<<blocks_for((n + VEC - 1) / VEC), kThreads, 0, s>>>(f, pa, pb, py, n, as, bs);
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    }
  }
  if (L.rank >= 2 && L.dims[0] % VEC == 0 && L.fits32) {
    const bool a_rep = L.strides[0][0] == 0, b_rep = L.strides[1][0] == 0;
    const bool vec_ok = (a_rep || aligned_to(pa, VEC * sizeof(TA))) && (b_rep || aligned_to(pb, VEC * sizeof(TB))) &&
                        aligned_to(py, VEC * sizeof(TO));
    if (vec_ok) {
      const int64_t nvec = n / VEC;
      binary_bcast_vec_kernel<VEC, uint32_t, F, TA, TB, TO><<<blocks_for(nvec), kThreads, 0, s>>>(
          f, pa, pb, py, static_cast<uint32_t>(nvec), make_indexer<2, uint32_t>(L), a_rep, b_rep);
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    }
  }
  if (L.fits32) {
    binary_bcast_kernel<uint32_t, F, TA, TB, TO>
        <<<blocks_for(n), kThreads, 0, s>>>(f, pa, pb, py, static_cast<uint32_t>(n), make_indexer<2, uint32_t>(L));
  } else {
    binary_bcast_kernel<uint64_t, F, TA, TB, TO>
        <<<blocks_for(n), kThreads, 0, s>>>(f, pa, pb, py, static_cast<uint64_t>(n), make_indexer<2, uint64_t>(L));
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

template <B OP>
Status run_arith(KernelContext& ctx) {
  const DeviceTensor& a = ctx.input(0);
  const DeviceTensor& b = ctx.input(1);
  DeviceTensor& y = ctx.output(0);
  std::optional<Status> st = dispatch_numeric(a.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch_binary<T, T, T>(ctx, BinMap<Arith<OP>, T, T, T>{}, a.data, a.dims, b.data, b.dims, y);
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(a.dtype));
}

Status run_mod(KernelContext& ctx) {
  return ctx.node().attr_int("fmod", 0) != 0 ? run_arith<B::kFMod>(ctx) : run_arith<B::kMod>(ctx);
}

Status run_prelu(KernelContext& ctx) {
  const DeviceTensor& a = ctx.input(0);
  const DeviceTensor& slope = ctx.input(1);
  std::vector<int64_t> sdims = slope.dims;
  if (ctx.opset() < 7 && a.rank() >= 2 && slope.rank() == 1) {  // legacy per-channel slope, as the CPU does
    sdims.assign(a.rank() - 1, 1);
    sdims[0] = slope.dims[0];
  }
  DeviceTensor& y = ctx.output(0);
  std::optional<Status> st = dispatch_numeric(a.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch_binary<T, T, T>(ctx, BinMap<Arith<B::kPRelu>, T, T, T>{}, a.data, a.dims, slope.data, sdims, y);
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(a.dtype));
}

template <Cmp OP>
Status run_compare(KernelContext& ctx) {
  const DeviceTensor& a = ctx.input(0);
  const DeviceTensor& b = ctx.input(1);
  DeviceTensor& y = ctx.output(0);
  auto go = [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch_binary<T, T, uint8_t>(ctx, CmpMap<Compare<OP>, T>{}, a.data, a.dims, b.data, b.dims, y);
  };
  if constexpr (OP == Cmp::kAnd || OP == Cmp::kOr || OP == Cmp::kXor) {
    if (a.dtype == DType::kBool) return go(Tag<uint8_t>{});
  } else {
    if constexpr (OP == Cmp::kEq) {
      if (a.dtype == DType::kBool) return go(Tag<uint8_t>{});
    }
    if (std::optional<Status> st = dispatch_numeric(a.dtype, go)) return std::move(*st);
  }
  return ctx.error("dtype {} is not supported", dtype_name(a.dtype));
}

Status run_pow(KernelContext& ctx) {
  const DeviceTensor& a = ctx.input(0);
  const DeviceTensor& b = ctx.input(1);
  DeviceTensor& y = ctx.output(0);
  auto unsupported = [&] {
    return ctx.error("dtype {}^{} is not supported", dtype_name(a.dtype), dtype_name(b.dtype));
  };
  auto go = [&](auto ta, auto tb) {
    using TA = typename decltype(ta)::type;
    using TB = typename decltype(tb)::type;
    return launch_binary<TA, TB, TA>(ctx, BinMap<PowOp, TA, TB, TA>{}, a.data, a.dims, b.data, b.dims, y);
  };
  std::optional<Status> st;
  if (is_float_dt(a.dtype)) {
    st = dispatch_float(a.dtype, [&](auto ta) {
      std::optional<Status> r = dispatch_numeric(b.dtype, [&](auto tb) { return go(ta, tb); });
      return r ? std::move(*r) : unsupported();
    });
  } else if (is_int_dt(a.dtype) && (is_int_dt(b.dtype) || b.dtype == DType::kF32)) {
    st = dispatch_int(a.dtype, [&](auto ta) {
      if (b.dtype == DType::kF32) return go(ta, Tag<float>{});
      std::optional<Status> r = dispatch_int(b.dtype, [&](auto tb) { return go(ta, tb); });
      return r ? std::move(*r) : unsupported();
    });
  }
  return st ? std::move(*st) : unsupported();
}

template <class T, class Op>
Status launch_variadic(const KernelContext& ctx, Op op, const std::vector<const DeviceTensor*>& ins, int mean_div,
                       DeviceTensor& y) {
  const int64_t n = y.numel();
  if (n <= 0) return Status();
  static const std::vector<int64_t> kNoDims;  // unused slots: rank 0, stride 0 everywhere
  std::array<const std::vector<int64_t>*, kMaxVariadic> dims;
  VarInputs<T> in{};
  for (int k = 0; k < kMaxVariadic; ++k) {
    const bool used = k < static_cast<int>(ins.size());
    dims[k] = used ? &ins[k]->dims : &kNoDims;
    in.p[k] = used ? static_cast<const T*>(ins[k]->data) : static_cast<const T*>(ins[0]->data);
  }
  const Layout<kMaxVariadic> L = make_layout<kMaxVariadic>(y.dims, dims);
  if (!L.ok) return ctx.error("cannot broadcast the inputs to {} (or more than {} dims after merging)",
                              dims_to_string(y.dims), kMaxRank);
  const int nin = static_cast<int>(ins.size());
  T* py = static_cast<T*>(y.data);
  if (L.rank == 1) {
    constexpr int VEC = static_cast<int>(16 / sizeof(T));
    uint32_t scalar_mask = 0;
    bool vec_ok = aligned_to(py, 16);
    for (int k = 0; k < nin; ++k) {
      if (L.strides[k][0] == 0) scalar_mask |= 1u << k;
      else vec_ok = vec_ok && aligned_to(in.p[k], 16);
    }
    if (vec_ok) {
      variadic_flat_kernel<VEC, Op, T><<<blocks_for((n + VEC - 1) / VEC), kThreads, 0, ctx.stream()>>>(
          op, in, nin, scalar_mask, py, n, mean_div);
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    }
  }
  if (L.fits32) {
    variadic_kernel<uint32_t, Op, T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(
        op, in, nin, py, static_cast<uint32_t>(n), make_indexer<kMaxVariadic, uint32_t>(L), mean_div);
  } else {
    variadic_kernel<uint64_t, Op, T><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(
        op, in, nin, py, static_cast<uint64_t>(n), make_indexer<kMaxVariadic, uint64_t>(L), mean_div);
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

// Max/Min/Sum/Mean with 1..kMaxVariadic inputs (absent ones skipped; Mean still divides by the input count,
// like the CPU).
template <B OP, bool kMean>
Status run_variadic(KernelContext& ctx) {
  std::vector<const DeviceTensor*> ins;
  for (size_t k = 0; k < ctx.num_inputs(); ++k)
    if (ctx.has_input(k)) ins.push_back(&ctx.input(k));
  if (ins.empty() || static_cast<int>(ins.size()) > kMaxVariadic)
    return ctx.error("{} inputs are not supported", ins.size());
  const int total = static_cast<int>(ctx.num_inputs());
  DeviceTensor& y = ctx.output(0);
  if (ins.size() == 1 && (!kMean || total == 1) && ins[0]->numel() == y.numel()) {
    alias_input(ctx, 0);  // op(x) == x (and x / 1 == x)
    return Status();
  }
  std::optional<Status> st = dispatch_numeric(y.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (ins.size() == 2 && !kMean) {
      return launch_binary<T, T, T>(ctx, BinMap<Arith<OP>, T, T, T>{}, ins[0]->data, ins[0]->dims, ins[1]->data,
                                  ins[1]->dims, y);
    } else if (ins.size() == 2 && kMean && total == 2) {
      return launch_binary<T, T, T>(ctx, BinMap<Arith<B::kMean2>, T, T, T>{}, ins[0]->data, ins[0]->dims,
                                  ins[1]->data, ins[1]->dims, y);
    } else {
      return launch_variadic<T>(ctx, Arith<OP>{}, ins, kMean ? total : 0, y);
    }
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(y.dtype));
}

// ---- Dtype filters.
bool same_numeric2(const ir::Node&, const std::vector<DType>& d) {
  return d.size() == 2 && d[0] == d[1] && is_numeric_dt(d[0]);
}
bool compare_dtypes(const ir::Node& n, const std::vector<DType>& d) {
  return d.size() == 2 && d[0] == d[1] && (is_numeric_dt(d[0]) || (n.op_type == "Equal" && d[0] == DType::kBool));
}
bool bool2(const ir::Node&, const std::vector<DType>& d) {
  return d.size() == 2 && d[0] == DType::kBool && d[1] == DType::kBool;
}
bool pow_dtypes(const ir::Node&, const std::vector<DType>& d) {
  if (d.size() != 2) return false;
  if (is_float_dt(d[0])) return is_numeric_dt(d[1]);
  return is_int_dt(d[0]) && (is_int_dt(d[1]) || d[1] == DType::kF32);
}
bool variadic_dtypes(const ir::Node&, const std::vector<DType>& d) {
  if (d.empty() || !is_numeric_dt(d[0])) return false;
  int present = 0;
  for (DType t : d) {
    if (t == DType::kUndefined) continue;
    if (t != d[0]) return false;
    ++present;
  }
  return present >= 1 && present <= kMaxVariadic;
}

}  // namespace

void register_cuda_binary(KernelTable& t) {
  t.add({"Add", run_arith<B::kAdd>, same_numeric2});
  t.add({"Sub", run_arith<B::kSub>, same_numeric2});
  t.add({"Mul", run_arith<B::kMul>, same_numeric2});
  t.add({"Div", run_arith<B::kDiv>, same_numeric2});
  t.add({"Mod", run_mod, same_numeric2});
  t.add({"PRelu", run_prelu, same_numeric2});
  t.add({"Pow", run_pow, pow_dtypes});
  t.add({"Max", run_variadic<B::kMax, false>, variadic_dtypes});
  t.add({"Min", run_variadic<B::kMin, false>, variadic_dtypes});
  t.add({"Sum", run_variadic<B::kAdd, false>, variadic_dtypes});
  t.add({"Mean", run_variadic<B::kAdd, true>, variadic_dtypes});
  t.add({"Equal", run_compare<Cmp::kEq>, compare_dtypes});
  t.add({"Less", run_compare<Cmp::kLt>, compare_dtypes});
  t.add({"Greater", run_compare<Cmp::kGt>, compare_dtypes});
  t.add({"LessOrEqual", run_compare<Cmp::kLe>, compare_dtypes});
  t.add({"GreaterOrEqual", run_compare<Cmp::kGe>, compare_dtypes});
  t.add({"And", run_compare<Cmp::kAnd>, bool2});
  t.add({"Or", run_compare<Cmp::kOr>, bool2});
  t.add({"Xor", run_compare<Cmp::kXor>, bool2});
}

}  // namespace kiln::cuda
