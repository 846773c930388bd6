// Softmax, LogSoftmax, Hardmax over rows of length n spaced `inner` apart, max-subtracted for stability.
#include <cmath>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

enum class Kind { kSoftmax, kLogSoftmax, kHardmax };

template <class T>
void run_row(Kind kind, const T* x, T* y, int64_t n, int64_t inner) {
  if (kind == Kind::kHardmax) {
    int64_t best = 0;
    for (int64_t k = 1; k < n; ++k)
      if (x[k * inner] > x[best * inner]) best = k;
    for (int64_t k = 0; k < n; ++k) y[k * inner] = T(k == best ? 1 : 0);
    return;
  }
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t k = 0; k < n; ++k) m = std::max(m, static_cast<double>(x[k * inner]));
  double s = 0;
  for (int64_t k = 0; k < n; ++k) s += std::exp(static_cast<double>(x[k * inner]) - m);
  const double log_s = std::log(s);
  for (int64_t k = 0; k < n; ++k) {
    double v = static_cast<double>(x[k * inner]) - m;
    y[k * inner] = static_cast<T>(kind == Kind::kSoftmax ? std::exp(v) / s : v - log_s);
  }
}

Status run_softmax(KernelContext& ctx) {
  const std::string& op = ctx.node().op_type;
  const Kind kind =
      op == "Softmax" ? Kind::kSoftmax : (op == "LogSoftmax" ? Kind::kLogSoftmax : Kind::kHardmax);
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", ctx.opset() < 13 ? 1 : -1);
  if (axis < 0) axis += rank;
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dim(i);
  if (ctx.opset() < 13) {
    for (int64_t i = axis; i < rank; ++i) n *= x.dim(i);  // the coerced-2-D form: one row is everything after
  } else {
    n = x.dim(axis);
    for (int64_t i = axis + 1; i < rank; ++i) inner *= x.dim(i);
  }
  Tensor& y = ctx.output(0);
  bool ok = dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i)
        run_row<T>(kind, px + o * n * inner + i, py + o * n * inner + i, n, inner);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_softmax(KernelTable& t) {
  for (auto name : {"Softmax", "LogSoftmax", "Hardmax"}) t.add({name, run_softmax});
}

}  // namespace kiln::cpu
