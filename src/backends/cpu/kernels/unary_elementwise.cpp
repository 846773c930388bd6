// Unary elementwise kernels, kept as data: one (op, function) row per op.
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

using FloatFn = double (*)(double x, const ir::Node& n);

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

const std::pair<std::string_view, FloatFn> kFloatOps[] = {
    {"Exp", [](double x, const ir::Node&) { return std::exp(x); }},
    {"Log", [](double x, const ir::Node&) { return std::log(x); }},
    {"Sqrt", [](double x, const ir::Node&) { return std::sqrt(x); }},
    {"Reciprocal", [](double x, const ir::Node&) { return 1.0 / x; }},
    {"Sin", [](double x, const ir::Node&) { return std::sin(x); }},
    {"Cos", [](double x, const ir::Node&) { return std::cos(x); }},
    {"Tan", [](double x, const ir::Node&) { return std::tan(x); }},
    {"Asin", [](double x, const ir::Node&) { return std::asin(x); }},
    {"Acos", [](double x, const ir::Node&) { return std::acos(x); }},
    {"Atan", [](double x, const ir::Node&) { return std::atan(x); }},
    {"Sinh", [](double x, const ir::Node&) { return std::sinh(x); }},
    {"Cosh", [](double x, const ir::Node&) { return std::cosh(x); }},
    {"Asinh", [](double x, const ir::Node&) { return std::asinh(x); }},
    {"Acosh", [](double x, const ir::Node&) { return std::acosh(x); }},
    {"Atanh", [](double x, const ir::Node&) { return std::atanh(x); }},
    {"Erf", [](double x, const ir::Node&) { return std::erf(x); }},
    {"Sigmoid", [](double x, const ir::Node&) { return sigmoid(x); }},
    {"Tanh", [](double x, const ir::Node&) { return std::tanh(x); }},
    {"Softplus", [](double x, const ir::Node&) { return x > 30 ? x : std::log1p(std::exp(x)); }},
    {"Softsign", [](double x, const ir::Node&) { return x / (1.0 + std::fabs(x)); }},
    {"Mish", [](double x, const ir::Node&) { return x * std::tanh(x > 30 ? x : std::log1p(std::exp(x))); }},
    {"LeakyRelu",
     [](double x, const ir::Node& n) { return x >= 0 ? x : x * static_cast<double>(n.attr_float("alpha", 0.01f)); }},
    {"Elu",
     [](double x, const ir::Node& n) {
       return x >= 0 ? x : static_cast<double>(n.attr_float("alpha", 1.f)) * (std::exp(x) - 1.0);
     }},
    {"Selu",
     [](double x, const ir::Node& n) {
       double a = n.attr_float("alpha", 1.67326319217681884765625f);
       double g = n.attr_float("gamma", 1.05070102214813232421875f);
       return x > 0 ? g * x : g * (a * std::exp(x) - a);
     }},
    {"Celu",
     [](double x, const ir::Node& n) {
       double a = n.attr_float("alpha", 1.f);
       return std::max(0.0, x) + std::min(0.0, a * (std::exp(x / a) - 1.0));
     }},
    {"HardSigmoid",
     [](double x, const ir::Node& n) {
       double a = n.attr_float("alpha", 0.2f), b = n.attr_float("beta", 0.5f);
       return std::max(0.0, std::min(1.0, a * x + b));
     }},
    {"HardSwish", [](double x, const ir::Node&) { return x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5)); }},
    {"ThresholdedRelu",
     [](double x, const ir::Node& n) { return x > static_cast<double>(n.attr_float("alpha", 1.f)) ? x : 0.0; }},
    {"Shrink",
     [](double x, const ir::Node& n) {
       double l = n.attr_float("lambd", 0.5f), b = n.attr_float("bias", 0.f);
       return x < -l ? x + b : (x > l ? x - b : 0.0);
     }},
    {"Gelu",
     [](double x, const ir::Node& n) {
       if (n.attr_string("approximate", "none") == "tanh")
         return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
       return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
     }},
};

FloatFn find_float_fn(std::string_view op) {
  for (const auto& [name, fn] : kFloatOps)
    if (name == op) return fn;
  return nullptr;
}

Status run_float_op(KernelContext& ctx) {
  FloatFn fn = find_float_fn(ctx.node().op_type);
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  bool ok = dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = static_cast<T>(fn(static_cast<double>(px[i]), ctx.node()));
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

// Ops that are defined for integers too and keep the dtype.
template <class Fn>
Status run_numeric(KernelContext& ctx, Fn fn) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  bool ok = dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = fn(px[i]);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

Status run_abs(KernelContext& ctx) {
  return run_numeric(ctx, [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_unsigned_v<T>) return v;
    else return static_cast<T>(v < 0 ? -v : v);
  });
}
Status run_neg(KernelContext& ctx) {
  return run_numeric(ctx, [](auto v) { return static_cast<decltype(v)>(-v); });
}
Status run_sign(KernelContext& ctx) {
  return run_numeric(ctx, [](auto v) {
    using T = decltype(v);
    return static_cast<T>(v > T(0) ? 1 : (v < T(0) ? -1 : 0));
  });
}
Status run_relu(KernelContext& ctx) {
  return run_numeric(ctx, [](auto v) { return v > decltype(v)(0) ? v : decltype(v)(0); });
}
Status run_floor(KernelContext& ctx) {
  return run_numeric(ctx, [](auto v) {
    if constexpr (std::is_floating_point_v<decltype(v)>) return std::floor(v);
    else return v;
  });
}
Status run_ceil(KernelContext& ctx) {
  return run_numeric(ctx, [](auto v) {
    if constexpr (std::is_floating_point_v<decltype(v)>) return std::ceil(v);
    else return v;
  });
}
Status run_round(KernelContext& ctx) {  // half to even
  return run_numeric(ctx, [](auto v) {
    if constexpr (std::is_floating_point_v<decltype(v)>) return std::nearbyint(v);
    else return v;
  });
}
Status run_not(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  for (int64_t i = 0; i < x.numel(); ++i) ctx.output(0).data<uint8_t>()[i] = x.data<uint8_t>()[i] ? 0 : 1;
  return Status();
}
Status run_bitwise_not(KernelContext& ctx) {
  return run_numeric(ctx, [](auto v) {
    if constexpr (std::is_integral_v<decltype(v)>) return static_cast<decltype(v)>(~v);
    else return v;
  });
}

Status run_isnan(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  for (int64_t i = 0; i < x.numel(); ++i) ctx.output(0).data<uint8_t>()[i] = std::isnan(x.get_as_double(i));
  return Status();
}
Status run_isinf(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const bool pos = ctx.node().attr_int("detect_positive", 1) != 0;
  const bool neg = ctx.node().attr_int("detect_negative", 1) != 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    double v = x.get_as_double(i);
    ctx.output(0).data<uint8_t>()[i] = std::isinf(v) && ((v > 0 && pos) || (v < 0 && neg));
  }
  return Status();
}

Status run_clip(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  // Opset < 11 carries min/max as attributes; later as optional scalar inputs.
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  if (ctx.opset() < 11) {
    lo = ctx.node().attr_float("min", -std::numeric_limits<float>::infinity());
    hi = ctx.node().attr_float("max", std::numeric_limits<float>::infinity());
  } else {
    if (ctx.has_input(1) && ctx.input(1).numel() > 0) lo = ctx.input(1).get_as_double(0);
    if (ctx.has_input(2) && ctx.input(2).numel() > 0) hi = ctx.input(2).get_as_double(0);
  }
  return run_numeric(ctx, [lo, hi](auto v) {
    using T = decltype(v);
    double d = static_cast<double>(v);
    if (d < lo) return static_cast<T>(lo);
    if (d > hi) return static_cast<T>(hi);
    return v;
  });
}

}  // namespace

void register_cpu_unary_elementwise(KernelTable& t) {
  for (const auto& [name, fn] : kFloatOps) t.add({name, run_float_op});
  t.add({"Abs", run_abs});
  t.add({"Neg", run_neg});
  t.add({"Sign", run_sign});
  t.add({"Relu", run_relu});
  t.add({"Floor", run_floor});
  t.add({"Ceil", run_ceil});
  t.add({"Round", run_round});
  t.add({"Not", run_not});
  t.add({"BitwiseNot", run_bitwise_not});
  t.add({"IsNaN", run_isnan});
  t.add({"IsInf", run_isinf});
  t.add({"Clip", run_clip});
}

}  // namespace kiln::cpu
