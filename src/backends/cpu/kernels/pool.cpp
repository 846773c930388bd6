// Max/Average/Lp pooling over N-D windows, and the Global* reductions over all spatial dims.
#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "ops/conv_pool_attrs.h"

namespace kiln::cpu {

namespace {

enum class PoolKind { kMax, kAverage, kLp };

struct PoolParams {
  PoolKind kind = PoolKind::kMax;
  bool count_include_pad = false;
  bool column_major = false;  // MaxPool storage_order=1: Indices count the first spatial axis fastest
  double p = 2.0;
};

template <class T>
void pool(const Tensor& x, Tensor& y, Tensor* indices, const ops::Window& w, const PoolParams& pp) {
  const size_t n_sp = x.rank() - 2;
  const std::vector<int64_t> in(x.dims().begin() + 2, x.dims().end());
  const std::vector<int64_t> out(y.dims().begin() + 2, y.dims().end());
  const int64_t planes = x.dim(0) * x.dim(1), in_size = num_elements(in), out_size = num_elements(out);
  const auto in_strides = strides_of(in);
  std::vector<int64_t> index_strides(n_sp, 1);  // for Indices, row- or column-major
  for (size_t d = 0; d < n_sp; ++d)
    index_strides[d] = pp.column_major ? (d == 0 ? 1 : index_strides[d - 1] * in[d - 1]) : in_strides[d];
  const T* px = x.data<T>();
  T* py = y.data<T>();
  int64_t* pi = indices ? indices->data<int64_t>() : nullptr;
  std::vector<int64_t> oidx(n_sp), kidx(n_sp), start(n_sp), k_lo(n_sp), k_hi(n_sp);
  // Window taps k (0 <= k < kernel) whose position start + k * dilation lies in [lo, hi): only those are
  // visited, so a window far larger than the input (a corrupt kernel_shape) costs nothing extra.
  auto taps = [](int64_t start, int64_t dil, int64_t kernel, int64_t lo, int64_t hi) {
    auto ceil_div = [](int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
    const int64_t first = std::clamp<int64_t>(ceil_div(lo - start, dil), 0, kernel);
    const int64_t last = std::clamp<int64_t>(ceil_div(hi - start, dil), first, kernel);
    return std::pair<int64_t, int64_t>(first, last);
  };
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = px + plane * in_size;
    std::fill(oidx.begin(), oidx.end(), 0);
    for (int64_t o = 0; o < out_size; ++o) {
      bool empty = false;
      // Taps inside the padded input (count_include_pad's divisor), in double: a corrupt kernel_shape's window
      // (2^40 per dim) has more taps than int64 holds.
      double padded = 1;
      for (size_t d = 0; d < n_sp; ++d) {
        start[d] = oidx[d] * w.strides[d] - w.pad_begin[d];
        std::tie(k_lo[d], k_hi[d]) = taps(start[d], w.dilations[d], w.kernel[d], 0, in[d]);
        const auto [p_lo, p_hi] = taps(start[d], w.dilations[d], w.kernel[d], -w.pad_begin[d], in[d] + w.pad_end[d]);
        padded *= static_cast<double>(p_hi - p_lo);
        empty |= k_lo[d] == k_hi[d];
      }
      double acc = pp.kind == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
      T best = std::numeric_limits<T>::lowest();
      int64_t best_at = -1, valid = 0;
      kidx = k_lo;
      while (!empty) {
        int64_t off = 0, at = 0;
        for (size_t d = 0; d < n_sp; ++d) {
          const int64_t pos = start[d] + kidx[d] * w.dilations[d];
          off += pos * in_strides[d];
          at += pos * index_strides[d];
        }
        ++valid;
        const T v = xp[off];
        if (pp.kind == PoolKind::kMax) {
          // NaN wins, like the reference's max.
          if (best_at < 0 || v > best || (v != v && best == best)) best = v, best_at = at;
        } else if (pp.kind == PoolKind::kAverage) {
          acc += static_cast<double>(v);
        } else {
          acc += std::pow(std::fabs(static_cast<double>(v)), pp.p);
        }
        size_t d = n_sp;
        while (d > 0 && ++kidx[d - 1] == k_hi[d - 1]) kidx[d - 1] = k_lo[d - 1], --d;
        if (d == 0) break;
      }
      T& dst = py[plane * out_size + o];
      if (pp.kind == PoolKind::kMax) {
        dst = best;
        if (pi) pi[plane * out_size + o] = plane * in_size + std::max<int64_t>(best_at, 0);
      } else if (pp.kind == PoolKind::kAverage) {
        const double count = pp.count_include_pad ? padded : static_cast<double>(valid);
        dst = static_cast<T>(count > 0 ? acc / count : 0.0);
      } else {
        dst = static_cast<T>(std::pow(acc, 1.0 / pp.p));
      }
      ops::next_index(oidx, out);
    }
  }
}

Status run_pool(KernelContext& ctx, PoolKind kind) {
  const Tensor& x = ctx.input(0);
  const size_t n_sp = x.rank() - 2;
  KILN_ASSIGN_OR_RETURN(ops::Window w, ops::read_window(ctx.node(), n_sp, {}));
  for (size_t i = 0; i < n_sp; ++i) ops::window_output_size(w, i, x.dim(2 + i));
  PoolParams pp;
  pp.kind = kind;
  pp.count_include_pad = ctx.node().attr_int("count_include_pad", 0) != 0;
  pp.column_major = ctx.node().attr_int("storage_order", 0) == 1;
  pp.p = ctx.node().attr_float("p", 2.f);
  Tensor* indices = ctx.has_output(1) ? &ctx.output(1) : nullptr;
  bool ok = kind == PoolKind::kMax ? dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    pool<T>(x, ctx.output(0), indices, w, pp);
  }) : dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    pool<T>(x, ctx.output(0), nullptr, w, pp);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

Status run_max_pool(KernelContext& c) { return run_pool(c, PoolKind::kMax); }
Status run_average_pool(KernelContext& c) { return run_pool(c, PoolKind::kAverage); }
Status run_lp_pool(KernelContext& c) { return run_pool(c, PoolKind::kLp); }

Status run_global_pool(KernelContext& ctx, PoolKind kind) {
  const Tensor& x = ctx.input(0);
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t size = planes == 0 ? 0 : x.numel() / planes;
  const double p = ctx.node().attr_float("p", 2.f);
  bool ok = dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = ctx.output(0).data<T>();
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* xp = px + plane * size;
      double acc = kind == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
      for (int64_t i = 0; i < size; ++i) {
        const double v = static_cast<double>(xp[i]);
        if (kind == PoolKind::kMax) acc = (v > acc || std::isnan(v)) && !std::isnan(acc) ? v : acc;
        else if (kind == PoolKind::kAverage) acc += v;
        else acc += std::pow(std::fabs(v), p);
      }
      if (kind == PoolKind::kAverage) acc = size > 0 ? acc / static_cast<double>(size) : std::nan("");
      if (kind == PoolKind::kLp) acc = std::pow(acc, 1.0 / p);
      py[plane] = static_cast<T>(acc);
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

Status run_global_max_pool(KernelContext& c) { return run_global_pool(c, PoolKind::kMax); }
Status run_global_average_pool(KernelContext& c) { return run_global_pool(c, PoolKind::kAverage); }
Status run_global_lp_pool(KernelContext& c) { return run_global_pool(c, PoolKind::kLp); }

}  // namespace

void register_cpu_pool(KernelTable& t) {
  t.add({"MaxPool", run_max_pool});
  t.add({"AveragePool", run_average_pool});
  t.add({"LpPool", run_lp_pool});
  t.add({"GlobalMaxPool", run_global_max_pool});
  t.add({"GlobalAveragePool", run_global_average_pool});
  t.add({"GlobalLpPool", run_global_lp_pool});
}

}  // namespace kiln::cpu
