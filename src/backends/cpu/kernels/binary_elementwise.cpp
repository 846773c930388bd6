// Broadcasting binary/variadic elementwise kernels. Each op is one lambda in a table.
#include <cmath>
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

// Visits every output index with the flat offsets of both inputs under broadcasting.
template <class Fn>
void for_each_broadcast(const std::vector<int64_t>& out_dims, const std::vector<int64_t>& sa,
                        const std::vector<int64_t>& sb, Fn&& fn) {
  const int64_t n = num_elements(out_dims);
  const size_t rank = out_dims.size();
  std::vector<int64_t> idx(rank, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, oa, ob);
    for (int64_t d = static_cast<int64_t>(rank) - 1; d >= 0; --d) {
      if (++idx[d] < out_dims[d]) {
        oa += sa[d];
        ob += sb[d];
        break;
      }
      oa -= sa[d] * (out_dims[d] - 1);
      ob -= sb[d] * (out_dims[d] - 1);
      idx[d] = 0;
    }
  }
}

template <class T, class R, class Op>
void apply_binary(const Tensor& a, const Tensor& b, Tensor& out, Op op) {
  auto sa = broadcast_strides(a.dims(), out.dims());
  auto sb = broadcast_strides(b.dims(), out.dims());
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* po = out.data<R>();
  for_each_broadcast(out.dims(), sa, sb, [&](int64_t i, int64_t ia, int64_t ib) { po[i] = op(pa[ia], pb[ib]); });
}

template <class T>
T floor_mod(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    T r = std::fmod(a, b);
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    if (b == 0) return 0;
    T r = static_cast<T>(a % b);
    if constexpr (std::is_signed_v<T>) {
      if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
    }
    return r;
  }
}

template <class T>
T safe_div(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return a / b;
  } else {
    return b == 0 ? T(0) : static_cast<T>(a / b);  // integer division by zero: 0, never a trap
  }
}

enum class Arith { kAdd, kSub, kMul, kDiv, kMax, kMin };

template <class T>
T arith(Arith op, T a, T b) {
  switch (op) {
    case Arith::kAdd: return static_cast<T>(a + b);
    case Arith::kSub: return static_cast<T>(a - b);
    case Arith::kMul: return static_cast<T>(a * b);
    case Arith::kDiv: return safe_div(a, b);
    case Arith::kMax:
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
      }
      return a > b ? a : b;
    case Arith::kMin:
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
      }
      return a < b ? a : b;
  }
  return a;
}

Status run_arith(KernelContext& ctx, Arith op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& out = ctx.output(0);
  bool ok = dispatch_all(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    apply_binary<T, T>(a, b, out, [op](T x, T y) { return arith(op, x, y); });
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(a.dtype()));
}

Status run_add(KernelContext& c) { return run_arith(c, Arith::kAdd); }
Status run_sub(KernelContext& c) { return run_arith(c, Arith::kSub); }
Status run_mul(KernelContext& c) { return run_arith(c, Arith::kMul); }
Status run_div(KernelContext& c) { return run_arith(c, Arith::kDiv); }

Status run_variadic(KernelContext& ctx, Arith op, bool mean) {
  Tensor& out = ctx.output(0);
  const DType dt = ctx.input(0).dtype();
  Tensor acc = ctx.input(0);
  for (size_t k = 1; k < ctx.num_inputs(); ++k) {
    if (!ctx.has_input(k)) continue;
    // Broadcast the running result against the next input.
    std::vector<int64_t> dims = out.dims();
    Tensor next(dt, dims);
    dispatch_all(dt, [&](auto tag) {
      using T = typename decltype(tag)::type;
      apply_binary<T, T>(acc, ctx.input(k), next, [op](T x, T y) { return arith(op, x, y); });
    });
    acc = next;
  }
  // Broadcast the lone input (single-input case) or copy the result into the output.
  Tensor zero(dt, {});
  dispatch_all(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const size_t n_in = ctx.num_inputs();
    apply_binary<T, T>(acc, zero, out, [&](T x, T) {
      return mean ? static_cast<T>(x / static_cast<T>(n_in)) : x;
    });
  });
  return Status();
}

Status run_max(KernelContext& c) { return run_variadic(c, Arith::kMax, false); }
Status run_min(KernelContext& c) { return run_variadic(c, Arith::kMin, false); }
Status run_sum(KernelContext& c) { return run_variadic(c, Arith::kAdd, false); }
Status run_mean(KernelContext& c) { return run_variadic(c, Arith::kAdd, true); }

Status run_mod(KernelContext& ctx) {
  const bool fmod = ctx.node().attr_int("fmod", 0) != 0;
  const Tensor& a = ctx.input(0);
  bool ok = dispatch_all(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    apply_binary<T, T>(a, ctx.input(1), ctx.output(0), [fmod](T x, T y) -> T {
      if constexpr (std::is_floating_point_v<T>) {
        return fmod ? std::fmod(x, y) : floor_mod(x, y);
      } else {
        if (y == 0) return 0;
        return fmod ? static_cast<T>(x % y) : floor_mod(x, y);
      }
    });
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(a.dtype()));
}

Status run_pow(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  // The exponent may have another dtype: read it as double.
  Tensor b = convert_tensor(ctx.input(1), DType::kF64);
  bool ok = dispatch_all(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto sa = broadcast_strides(a.dims(), ctx.output(0).dims());
    auto sb = broadcast_strides(b.dims(), ctx.output(0).dims());
    const T* pa = a.data<T>();
    const double* pb = b.data<double>();
    T* po = ctx.output(0).data<T>();
    for_each_broadcast(ctx.output(0).dims(), sa, sb, [&](int64_t i, int64_t ia, int64_t ib) {
      po[i] = static_cast<T>(std::pow(static_cast<double>(pa[ia]), pb[ib]));
    });
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(a.dtype()));
}

Status run_prelu(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  Tensor slope = ctx.input(1);
  if (ctx.opset() < 7 && a.rank() >= 2 && slope.rank() == 1) {  // legacy per-channel slope
    std::vector<int64_t> dims(a.rank() - 1, 1);
    dims[0] = slope.dim(0);
    slope = slope.reshaped(dims);
  }
  bool ok = dispatch_float(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    apply_binary<T, T>(a, slope, ctx.output(0), [](T x, T s) { return x < 0 ? x * s : x; });
  });
  if (!ok) {
    ok = dispatch_all(a.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      apply_binary<T, T>(a, slope, ctx.output(0), [](T x, T s) { return x < 0 ? static_cast<T>(x * s) : x; });
    });
  }
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(a.dtype()));
}

enum class Cmp { kEq, kGt, kLt, kGe, kLe, kAnd, kOr, kXor };

template <Cmp op>
Status run_compare(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  bool ok = dispatch_all(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    apply_binary<T, uint8_t>(a, ctx.input(1), ctx.output(0), [](T x, T y) -> uint8_t {
      switch (op) {
        case Cmp::kEq: return x == y;
        case Cmp::kGt: return x > y;
        case Cmp::kLt: return x < y;
        case Cmp::kGe: return x >= y;
        case Cmp::kLe: return x <= y;
        case Cmp::kAnd: return (x != 0) && (y != 0);
        case Cmp::kOr: return (x != 0) || (y != 0);
        case Cmp::kXor: return (x != 0) != (y != 0);
      }
      return 0;
    });
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(a.dtype()));
}

enum class Bits { kShl, kShr, kAnd, kOr, kXor };

Status run_bits(KernelContext& ctx, Bits op) {
  const Tensor& a = ctx.input(0);
  if (!is_integer(a.dtype()) && a.dtype() != DType::kBool)
    return ctx.error("needs integer inputs, got {}", dtype_name(a.dtype()));
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T>) {
      apply_binary<T, T>(a, ctx.input(1), ctx.output(0), [op](T x, T y) -> T {
        switch (op) {
          case Bits::kShl: return y >= static_cast<T>(sizeof(T) * 8) ? T(0) : static_cast<T>(x << y);
          case Bits::kShr: return y >= static_cast<T>(sizeof(T) * 8) ? T(0) : static_cast<T>(x >> y);
          case Bits::kAnd: return static_cast<T>(x & y);
          case Bits::kOr: return static_cast<T>(x | y);
          case Bits::kXor: return static_cast<T>(x ^ y);
        }
        return x;
      });
    }
  });
  return Status();
}

Status run_bitshift(KernelContext& ctx) {
  const std::string dir = ctx.node().attr_string("direction", "");
  if (dir != "LEFT" && dir != "RIGHT") return ctx.error("attribute 'direction' must be LEFT or RIGHT, got '{}'", dir);
  return run_bits(ctx, dir == "LEFT" ? Bits::kShl : Bits::kShr);
}
Status run_bitwise_and(KernelContext& c) { return run_bits(c, Bits::kAnd); }
Status run_bitwise_or(KernelContext& c) { return run_bits(c, Bits::kOr); }
Status run_bitwise_xor(KernelContext& c) { return run_bits(c, Bits::kXor); }

}  // namespace

void register_cpu_binary_elementwise(KernelTable& t) {
  t.add({"Add", run_add});
  t.add({"Sub", run_sub});
  t.add({"Mul", run_mul});
  t.add({"Div", run_div});
  t.add({"Mod", run_mod});
  t.add({"Pow", run_pow});
  t.add({"PRelu", run_prelu});
  t.add({"Max", run_max});
  t.add({"Min", run_min});
  t.add({"Sum", run_sum});
  t.add({"Mean", run_mean});
  t.add({"Equal", run_compare<Cmp::kEq>});
  t.add({"Greater", run_compare<Cmp::kGt>});
  t.add({"Less", run_compare<Cmp::kLt>});
  t.add({"GreaterOrEqual", run_compare<Cmp::kGe>});
  t.add({"LessOrEqual", run_compare<Cmp::kLe>});
  t.add({"And", run_compare<Cmp::kAnd>});
  t.add({"Or", run_compare<Cmp::kOr>});
  t.add({"Xor", run_compare<Cmp::kXor>});
  t.add({"BitShift", run_bitshift});
  t.add({"BitwiseAnd", run_bitwise_and});
  t.add({"BitwiseOr", run_bitwise_or});
  t.add({"BitwiseXor", run_bitwise_xor});
}

}  // namespace kiln::cpu
