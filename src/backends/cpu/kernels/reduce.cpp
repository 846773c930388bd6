// Reduce* kernels: each output element folds the input elements that differ only along the reduced axes.
// Floats accumulate in double, integers in 64-bit integers so large sums and products stay exact.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/norm_util.h"
#include "ops/reduce.h"

namespace kiln::cpu {

namespace {

enum class Op { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

const std::pair<std::string_view, Op> kOps[] = {
    {"ReduceSum", Op::kSum},
    {"ReduceMean", Op::kMean},
    {"ReduceMax", Op::kMax},
    {"ReduceMin", Op::kMin},
    {"ReduceProd", Op::kProd},
    {"ReduceL1", Op::kL1},
    {"ReduceL2", Op::kL2},
    {"ReduceLogSum", Op::kLogSum},
    {"ReduceLogSumExp", Op::kLogSumExp},
    {"ReduceSumSquare", Op::kSumSquare},
};

template <class T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double,
                               std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

// double -> T without undefined behaviour for NaN/inf into integers.
template <class T>
T narrow(double v) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  }
  return static_cast<T>(v);
}

template <class T>
T reduce_one(Op op, const T* x, const std::vector<int64_t>& offs) {
  using A = Acc<T>;
  const int64_t n = static_cast<int64_t>(offs.size());
  switch (op) {
    case Op::kSum:
    case Op::kMean:
    case Op::kLogSum: {
      A s = 0;
      for (int64_t o : offs) s += static_cast<A>(x[o]);
      if (op == Op::kSum) return static_cast<T>(s);
      if (op == Op::kLogSum) return narrow<T>(std::log(static_cast<double>(s)));
      if constexpr (std::is_integral_v<T>) {
        return n == 0 ? T(0) : static_cast<T>(s / static_cast<A>(n));
      } else {
        return static_cast<T>(s / static_cast<double>(n));  // empty: 0/0 = NaN
      }
    }
    case Op::kSumSquare:
    case Op::kL2: {
      A s = 0;
      for (int64_t o : offs) s += static_cast<A>(x[o]) * static_cast<A>(x[o]);
      return op == Op::kL2 ? narrow<T>(std::sqrt(static_cast<double>(s))) : static_cast<T>(s);
    }
    case Op::kL1: {
      A s = 0;
      for (int64_t o : offs) {
        A v = static_cast<A>(x[o]);
        if constexpr (std::is_signed_v<A>)
          s += v < 0 ? -v : v;
        else
          s += v;
      }
      return static_cast<T>(s);
    }
    case Op::kProd: {
      A p = 1;
      for (int64_t o : offs) p *= static_cast<A>(x[o]);
      return static_cast<T>(p);
    }
    case Op::kMax:
    case Op::kMin: {
      const bool is_max = op == Op::kMax;
      T best;
      if constexpr (std::is_floating_point_v<T>) {
        best = is_max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
      } else {
        best = is_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
      }
      for (int64_t o : offs) {
        T v = x[o];
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(v)) return v;  // NaN wins, as in numpy
        }
        if (is_max ? v > best : v < best) best = v;
      }
      return best;
    }
    case Op::kLogSumExp: {
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t o : offs) m = std::max(m, static_cast<double>(x[o]));
      if (std::isinf(m)) return narrow<T>(m);  // empty or all -inf: -inf; any +inf: +inf
      double s = 0;
      for (int64_t o : offs) s += std::exp(static_cast<double>(x[o]) - m);
      return narrow<T>(m + std::log(s));
    }
  }
  return T(0);
}

Status run_reduce(KernelContext& ctx) {
  Op op = Op::kSum;
  for (const auto& [name, o] : kOps)
    if (name == ctx.node().op_type) op = o;
  const Tensor& x = ctx.input(0);
  const Tensor* axes = ctx.has_input(1) ? &ctx.input(1) : nullptr;
  auto spec =
      ops::reduce_spec(ctx.node(), ctx.opset(), static_cast<int64_t>(x.rank()), axes, axes != nullptr);
  if (!spec.ok()) return spec.status();
  Tensor& y = ctx.output(0);
  if (spec->noop) {
    std::memcpy(y.raw(), x.raw(), x.nbytes());
    return Status();
  }
  std::vector<bool> kept(spec->reduced.size());
  for (size_t i = 0; i < kept.size(); ++i) kept[i] = !spec->reduced[i];
  const auto outer = offsets_over(x.dims(), kept);
  const auto inner = offsets_over(x.dims(), spec->reduced);
  bool ok = dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (size_t i = 0; i < outer.size(); ++i) py[i] = reduce_one<T>(op, px + outer[i], inner);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_reduce(KernelTable& t) {
  for (const auto& [name, op] : kOps) t.add({name, run_reduce});
}

}  // namespace kiln::cpu
