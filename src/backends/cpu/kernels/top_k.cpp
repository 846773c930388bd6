// TopK: per row, the first k of (value, index) pairs ordered by value, ties by lower index; NaN ranks as the
// largest value. With sorted=0 the order is unspecified by ONNX; kiln returns it sorted anyway.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

Status run_top_k(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < 0) axis += rank;
  int64_t k = ctx.node().attr_int("k", 0);
  if (ctx.opset() >= 10) {
    KILN_ASSIGN_OR_RETURN(k, ctx.scalar_int(1));
  }
  const bool largest = ctx.node().attr_int("largest", 1) != 0;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int64_t i = axis + 1; i < rank; ++i) inner *= x.dim(i);
  const int64_t n = x.dim(axis);
  Tensor& values = ctx.output(0);
  int64_t* pi = ctx.output(1).data<int64_t>();
  bool ok = dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    std::vector<int64_t> order(n);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* row = px + o * n * inner + i;
        for (int64_t j = 0; j < n; ++j) order[j] = j;
        // "a comes before b": a strict weak order, so ties fall back to the index.
        auto before = [&](int64_t a, int64_t b) {
          const T va = row[a * inner], vb = row[b * inner];
          const bool na = is_nan(va), nb = is_nan(vb);
          if (na != nb) return largest ? na : nb;
          if (!na && va != vb) return largest ? va > vb : va < vb;
          return a < b;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t j = 0; j < k; ++j) {
          const int64_t at = (o * k + j) * inner + i;
          pv[at] = row[order[j] * inner];
          pi[at] = order[j];
        }
      }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_top_k(KernelTable& t) {
  t.add({"TopK", run_top_k});
}

}  // namespace kiln::cpu
