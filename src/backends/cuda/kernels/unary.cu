// Unary elementwise ops and activations, the same set and semantics as the CPU reference
// (src/backends/cpu/kernels/unary_elementwise.cpp). f16/bf16 compute in f32; the CPU computes in double, so
// transcendental results differ by a few f32 ulps at most. NaN handling mirrors the CPU's std::min/std::max
// (which return their first argument when a comparison with NaN fails).
#include <cmath>
#include <limits>
#include <string>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/ew_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

// ---- Float-only ops: operator()(float) -> float, attributes in a, b.
#define KILN_FLOAT_OP(NAME, EXPR)                                         \
  struct NAME {                                                           \
    float a = 0.f, b = 0.f;                                               \
    __device__ __forceinline__ float operator()(float x) const { return EXPR; } \
  };

KILN_FLOAT_OP(OpExp, expf(x))
KILN_FLOAT_OP(OpLog, logf(x))
KILN_FLOAT_OP(OpSqrt, sqrtf(x))
KILN_FLOAT_OP(OpReciprocal, 1.0f / x)
KILN_FLOAT_OP(OpSin, sinf(x))
KILN_FLOAT_OP(OpCos, cosf(x))
KILN_FLOAT_OP(OpTan, tanf(x))
KILN_FLOAT_OP(OpAsin, asinf(x))
KILN_FLOAT_OP(OpAcos, acosf(x))
KILN_FLOAT_OP(OpAtan, atanf(x))
KILN_FLOAT_OP(OpSinh, sinhf(x))
KILN_FLOAT_OP(OpCosh, coshf(x))
KILN_FLOAT_OP(OpAsinh, asinhf(x))
KILN_FLOAT_OP(OpAcosh, acoshf(x))
KILN_FLOAT_OP(OpAtanh, atanhf(x))
KILN_FLOAT_OP(OpErf, erff(x))
KILN_FLOAT_OP(OpSigmoid, 1.0f / (1.0f + expf(-x)))
KILN_FLOAT_OP(OpTanh, tanhf(x))
KILN_FLOAT_OP(OpSoftplus, x > 30.f ? x : log1pf(expf(x)))
KILN_FLOAT_OP(OpSoftsign, x / (1.0f + fabsf(x)))
KILN_FLOAT_OP(OpMish, x* tanhf(x > 30.f ? x : log1pf(expf(x))))
KILN_FLOAT_OP(OpLeakyRelu, x >= 0.f ? x : x * a)
KILN_FLOAT_OP(OpElu, x >= 0.f ? x : a * expm1f(x))
KILN_FLOAT_OP(OpSelu, x > 0.f ? b * x : b * (a * expm1f(x)))  // a = alpha, b = gamma
KILN_FLOAT_OP(OpThresholdedRelu, x > a ? x : 0.f)
KILN_FLOAT_OP(OpShrink, x < -a ? x + b : (x > a ? x - b : 0.f))  // a = lambd, b = bias
KILN_FLOAT_OP(OpFloor, floorf(x))
KILN_FLOAT_OP(OpCeil, ceilf(x))
KILN_FLOAT_OP(OpRound, rintf(x))  // half to even, like nearbyint in the default rounding mode
// 0.5 x (1 + erf(x / sqrt 2)) as PyTorch computes it. (An erfc form avoids the cancellation for x << 0 but
// costs twice the instructions and made f16 Gelu compute-bound on H100; the absolute error here stays below
// 1e-7 * |x|, and the result is below 1e-8 where cancellation sets in.)
KILN_FLOAT_OP(OpGelu, 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)))
#undef KILN_FLOAT_OP

// std::max(0, x) + std::min(0, alpha * (exp(x / alpha) - 1)), NaN-compatible with the std:: versions.
struct OpCelu {
  float a = 1.f, b = 0.f;
  __device__ __forceinline__ float operator()(float x) const {
    const float p = 0.f < x ? x : 0.f;
    const float t = a * expm1f(x / a);
    const float q = t < 0.f ? t : 0.f;
    return p + q;
  }
};
// std::max(0, std::min(1, alpha * x + beta)): NaN gives 1 there (std::min(1, NaN) is 1). Tested explicitly,
// since the compiler folds the clamp into a saturating FMA, which flushes NaN to 0.
struct OpHardSigmoid {
  float a = 0.2f, b = 0.5f;
  __device__ __forceinline__ float operator()(float x) const {
    float v = fmaf(a, x, b);
    if (isnan(v)) return 1.f;
    v = v < 1.f ? v : 1.f;
    return 0.f < v ? v : 0.f;
  }
};
struct OpHardSwish {
  float a = 0.f, b = 0.f;
  __device__ __forceinline__ float operator()(float x) const {
    float v = x / 6.0f + 0.5f;
    v = v < 1.f ? v : 1.f;
    v = 0.f < v ? v : 0.f;
    return x * v;
  }
};
// 0.5 x (1 + tanh(u)) == x * sigmoid(2u) == x / (1 + exp(-2u)): no cancellation for negative x.
struct OpGeluTanh {
  float a = 0.f, b = 0.f;
  __device__ __forceinline__ float operator()(float x) const {
    const float u = 0.79788456080286535588f * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
  }
};

// ---- Ops on floats and integers: operator()(C) -> C for C = float, int32_t, int64_t.
template <class C>
__device__ __forceinline__ C wrap_neg(C x) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(U(0) - static_cast<U>(x));  // two's complement wrap, like the CPU
  } else {
    return -x;
  }
}
struct OpAbs {
  template <class C>
  __device__ __forceinline__ C operator()(C x) const { return x < C(0) ? wrap_neg(x) : x; }
};
struct OpNeg {
  template <class C>
  __device__ __forceinline__ C operator()(C x) const { return wrap_neg(x); }
};
struct OpSign {
  template <class C>
  __device__ __forceinline__ C operator()(C x) const { return x > C(0) ? C(1) : (x < C(0) ? C(-1) : C(0)); }
};
struct OpRelu {
  template <class C>
  __device__ __forceinline__ C operator()(C x) const { return x > C(0) ? x : C(0); }
};
struct OpBitwiseNot {
  template <class C>
  __device__ __forceinline__ C operator()(C x) const { return static_cast<C>(~x); }
};
// Bounds compared in double, like the CPU (lo = -inf / hi = +inf when absent).
struct OpClip {
  double lo, hi;
  template <class C>
  __device__ __forceinline__ C operator()(C x) const {
    const double d = static_cast<double>(x);
    if (d < lo) return static_cast<C>(lo);
    if (d > hi) return static_cast<C>(hi);
    return x;
  }
};

// ---- Predicates: operator()(float) -> bool.
struct OpIsNaN {
  __device__ __forceinline__ bool operator()(float x) const { return isnan(x); }
};
struct OpIsInf {
  bool pos = true, neg = true;
  __device__ __forceinline__ bool operator()(float x) const { return isinf(x) && ((x > 0.f && pos) || (x < 0.f && neg)); }
};

// ---- Storage adapters.
template <class Op, class T>
struct MapSame {
  Op op;
  __device__ __forceinline__ T operator()(T v) const { return Num<T>::store(op(Num<T>::load(v))); }
};
template <class Op, class T>
struct MapBool {
  Op op;
  __device__ __forceinline__ uint8_t operator()(T v) const { return op(Num<T>::load(v)) ? 1 : 0; }
};
struct MapNot {
  __device__ __forceinline__ uint8_t operator()(uint8_t v) const { return v ? 0 : 1; }
};

template <class Op>
Status run_float_op(KernelContext& ctx, Op op) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  std::optional<Status> st = dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch_unary<T, T>(MapSame<Op, T>{op}, x.data, y.data, x.numel(), ctx.stream());
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(x.dtype));
}

template <class Op>
Status run_numeric_op(KernelContext& ctx, Op op) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  std::optional<Status> st = dispatch_numeric(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch_unary<T, T>(MapSame<Op, T>{op}, x.data, y.data, x.numel(), ctx.stream());
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(x.dtype));
}

template <class Op>
Status run_int_op(KernelContext& ctx, Op op) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  std::optional<Status> st = dispatch_int(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch_unary<T, T>(MapSame<Op, T>{op}, x.data, y.data, x.numel(), ctx.stream());
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(x.dtype));
}

template <class Op>
Status run_predicate(KernelContext& ctx, Op op) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  std::optional<Status> st = dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch_unary<T, uint8_t>(MapBool<Op, T>{op}, x.data, y.data, x.numel(), ctx.stream());
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(x.dtype));
}

template <class Op>
Status run_float_plain(KernelContext& ctx) {
  return run_float_op(ctx, Op{});
}

Status run_gelu(KernelContext& ctx) {
  if (ctx.node().attr_string("approximate", "none") == "tanh") return run_float_op(ctx, OpGeluTanh{});
  return run_float_op(ctx, OpGelu{});
}

Status run_clip(KernelContext& ctx) {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  if (ctx.opset() < 11) {
    lo = ctx.node().attr_float("min", -std::numeric_limits<float>::infinity());
    hi = ctx.node().attr_float("max", std::numeric_limits<float>::infinity());
  } else {
    if (ctx.has_input(1)) {
      const Tensor* t = ctx.host_input(1);
      if (!t) return ctx.error("'min' was expected on the host");
      if (t->numel() > 0) lo = t->get_as_double(0);
    }
    if (ctx.has_input(2)) {
      const Tensor* t = ctx.host_input(2);
      if (!t) return ctx.error("'max' was expected on the host");
      if (t->numel() > 0) hi = t->get_as_double(0);
    }
  }
  return run_numeric_op(ctx, OpClip{lo, hi});
}

Status run_not(KernelContext& ctx) {
  return launch_unary<uint8_t, uint8_t>(MapNot{}, ctx.input(0).data, ctx.output(0).data, ctx.input(0).numel(),
                                        ctx.stream());
}

bool float_input(const ir::Node&, const std::vector<DType>& dts) { return !dts.empty() && is_float_dt(dts[0]); }
bool numeric_input(const ir::Node&, const std::vector<DType>& dts) {
  return !dts.empty() && is_numeric_dt(dts[0]);
}
bool int_input(const ir::Node&, const std::vector<DType>& dts) { return !dts.empty() && is_int_dt(dts[0]); }
bool bool_input(const ir::Node&, const std::vector<DType>& dts) { return !dts.empty() && dts[0] == DType::kBool; }

}  // namespace

void register_cuda_unary(KernelTable& t) {
  t.add({"Exp", run_float_plain<OpExp>, float_input});
  t.add({"Log", run_float_plain<OpLog>, float_input});
  t.add({"Sqrt", run_float_plain<OpSqrt>, float_input});
  t.add({"Reciprocal", run_float_plain<OpReciprocal>, float_input});
  t.add({"Sin", run_float_plain<OpSin>, float_input});
  t.add({"Cos", run_float_plain<OpCos>, float_input});
  t.add({"Tan", run_float_plain<OpTan>, float_input});
  t.add({"Asin", run_float_plain<OpAsin>, float_input});
  t.add({"Acos", run_float_plain<OpAcos>, float_input});
  t.add({"Atan", run_float_plain<OpAtan>, float_input});
  t.add({"Sinh", run_float_plain<OpSinh>, float_input});
  t.add({"Cosh", run_float_plain<OpCosh>, float_input});
  t.add({"Asinh", run_float_plain<OpAsinh>, float_input});
  t.add({"Acosh", run_float_plain<OpAcosh>, float_input});
  t.add({"Atanh", run_float_plain<OpAtanh>, float_input});
  t.add({"Erf", run_float_plain<OpErf>, float_input});
  t.add({"Sigmoid", run_float_plain<OpSigmoid>, float_input});
  t.add({"Tanh", run_float_plain<OpTanh>, float_input});
  t.add({"Softplus", run_float_plain<OpSoftplus>, float_input});
  t.add({"Softsign", run_float_plain<OpSoftsign>, float_input});
  t.add({"Mish", run_float_plain<OpMish>, float_input});
  t.add({"HardSwish", run_float_plain<OpHardSwish>, float_input});
  t.add({"Floor", run_float_plain<OpFloor>, float_input});
  t.add({"Ceil", run_float_plain<OpCeil>, float_input});
  t.add({"Round", run_float_plain<OpRound>, float_input});
  t.add({"Gelu", run_gelu, float_input});
  t.add({"LeakyRelu",
         [](KernelContext& c) { return run_float_op(c, OpLeakyRelu{c.node().attr_float("alpha", 0.01f), 0.f}); },
         float_input});
  t.add({"Elu", [](KernelContext& c) { return run_float_op(c, OpElu{c.node().attr_float("alpha", 1.f), 0.f}); },
         float_input});
  t.add({"Selu",
         [](KernelContext& c) {
           return run_float_op(c, OpSelu{c.node().attr_float("alpha", 1.67326319217681884765625f),
                                         c.node().attr_float("gamma", 1.05070102214813232421875f)});
         },
         float_input});
  t.add({"Celu", [](KernelContext& c) { return run_float_op(c, OpCelu{c.node().attr_float("alpha", 1.f), 0.f}); },
         float_input});
  t.add({"HardSigmoid",
         [](KernelContext& c) {
           return run_float_op(c, OpHardSigmoid{c.node().attr_float("alpha", 0.2f), c.node().attr_float("beta", 0.5f)});
         },
         float_input});
  t.add({"ThresholdedRelu",
         [](KernelContext& c) { return run_float_op(c, OpThresholdedRelu{c.node().attr_float("alpha", 1.f), 0.f}); },
         float_input});
  t.add({"Shrink",
         [](KernelContext& c) {
           return run_float_op(c, OpShrink{c.node().attr_float("lambd", 0.5f), c.node().attr_float("bias", 0.f)});
         },
         float_input});
  t.add({"IsNaN", [](KernelContext& c) { return run_predicate(c, OpIsNaN{}); }, float_input});
  t.add({"IsInf",
         [](KernelContext& c) {
           return run_predicate(c, OpIsInf{c.node().attr_int("detect_positive", 1) != 0,
                                           c.node().attr_int("detect_negative", 1) != 0});
         },
         float_input});
  t.add({"Abs", [](KernelContext& c) { return run_numeric_op(c, OpAbs{}); }, numeric_input});
  t.add({"Neg", [](KernelContext& c) { return run_numeric_op(c, OpNeg{}); }, numeric_input});
  t.add({"Sign", [](KernelContext& c) { return run_numeric_op(c, OpSign{}); }, numeric_input});
  t.add({"Relu", [](KernelContext& c) { return run_numeric_op(c, OpRelu{}); }, numeric_input});
  t.add({"BitwiseNot", [](KernelContext& c) { return run_int_op(c, OpBitwiseNot{}); }, int_input});
  t.add({"Not", run_not, bool_input});
  // min and max (opset >= 11) are scalars read on the host.
  t.add({"Clip", run_clip, numeric_input, 0b110});
}

}  // namespace kiln::cuda
