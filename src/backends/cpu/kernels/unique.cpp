// Unique: slices along axis (or single elements) compared lexicographically; output sizes depend on the data.
#include <cmath>
#include <cstring>
#include <numeric>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

// NaNs sort last and equal each other so the ordering stays strict and weak.
template <class T>
int compare_values(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    const bool na = std::isnan(a), nb = std::isnan(b);
    if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
  }
  return a < b ? -1 : (b < a ? 1 : 0);
}

Status run_unique(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const bool sorted = ctx.node().attr_int("sorted", 1) != 0;
  const bool has_axis = ctx.node().has_attr("axis");
  int64_t axis = 0, outer = 1, n = x.numel(), inner = 1;
  if (has_axis) {
    const int64_t rank = static_cast<int64_t>(x.rank());
    axis = ctx.node().attr_int("axis", 0);
    if (axis < 0) axis += rank;
    n = x.dim(axis);
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int64_t d = axis + 1; d < rank; ++d) inner *= x.dim(d);
  }
  // Slice i holds x[o, i, k] for every (o, k), in that order.
  auto elem = [&](int64_t i, int64_t e) { return ((e / inner) * n + i) * inner + e % inner; };
  const int64_t slice = outer * inner;

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int64_t> group_of(static_cast<size_t>(n));
  std::vector<int64_t> first, counts;
  bool ok = dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    auto cmp = [&](int64_t a, int64_t b) {
      for (int64_t e = 0; e < slice; ++e)
        if (int c = compare_values(px[elem(a, e)], px[elem(b, e)]); c != 0) return c;
      return 0;
    };
    // Stable: within a run of equal slices the first occurrence comes first.
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
    for (int64_t k = 0; k < n; ++k) {
      if (k == 0 || cmp(order[k - 1], order[k]) != 0) {
        first.push_back(order[k]);
        counts.push_back(0);
      }
      group_of[order[k]] = static_cast<int64_t>(first.size()) - 1;
      ++counts.back();
    }
  });
  if (!ok) return ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));

  const int64_t u = static_cast<int64_t>(first.size());
  // rank_of[g]: the output position of group g (sorted order, or order of first occurrence).
  std::vector<int64_t> by_position(static_cast<size_t>(u));
  std::iota(by_position.begin(), by_position.end(), 0);
  if (!sorted) std::sort(by_position.begin(), by_position.end(), [&](int64_t a, int64_t b) { return first[a] < first[b]; });
  std::vector<int64_t> rank_of(static_cast<size_t>(u));
  for (int64_t p = 0; p < u; ++p) rank_of[by_position[p]] = p;

  std::vector<int64_t> y_dims = {u};
  if (has_axis) {
    y_dims = x.dims();
    y_dims[axis] = u;
  }
  Tensor& y = ctx.allocate_output(0, x.dtype(), y_dims);
  const size_t es = dtype_size(x.dtype());
  const auto* src = static_cast<const std::byte*>(x.raw());
  auto* dst = static_cast<std::byte*>(y.raw());
  for (int64_t p = 0; p < u; ++p)
    for (int64_t e = 0; e < slice; ++e) {
      const int64_t out_index = ((e / inner) * u + p) * inner + e % inner;
      std::memcpy(dst + out_index * es, src + elem(first[by_position[p]], e) * es, es);
    }
  if (ctx.num_outputs() > 1 && ctx.has_output(1)) {
    int64_t* pi = ctx.allocate_output(1, DType::kI64, {u}).data<int64_t>();
    for (int64_t p = 0; p < u; ++p) pi[p] = first[by_position[p]];
  }
  if (ctx.num_outputs() > 2 && ctx.has_output(2)) {
    int64_t* pv = ctx.allocate_output(2, DType::kI64, {n}).data<int64_t>();
    for (int64_t i = 0; i < n; ++i) pv[i] = rank_of[group_of[i]];
  }
  if (ctx.num_outputs() > 3 && ctx.has_output(3)) {
    int64_t* pc = ctx.allocate_output(3, DType::kI64, {u}).data<int64_t>();
    for (int64_t p = 0; p < u; ++p) pc[p] = counts[by_position[p]];
  }
  return Status();
}

}  // namespace

void register_cpu_unique(KernelTable& t) { t.add({"Unique", run_unique}); }

}  // namespace kiln::cpu
