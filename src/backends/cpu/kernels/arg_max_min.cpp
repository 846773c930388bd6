// ArgMax / ArgMin: first (or last, with select_last_index) position of the extreme value; NaN counts as
// extreme.
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

Status run_arg(KernelContext& ctx) {
  const bool is_max = ctx.node().op_type == "ArgMax";
  const bool last = ctx.node().attr_int("select_last_index", 0) != 0;
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int64_t i = axis + 1; i < rank; ++i) inner *= x.dim(i);
  const int64_t n = x.dim(axis);
  int64_t* py = ctx.output(0).data<int64_t>();
  bool ok = dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const T* row = px + o * n * inner + i;
        int64_t best = 0;
        for (int64_t k = 1; k < n; ++k) {
          T v = row[k * inner], b = row[best * inner];
          if (is_nan(b)) {
            if (last && is_nan(v)) best = k;
            continue;
          }
          bool better = is_nan(v) || (is_max ? v > b : v < b) || (last && v == b);
          if (better) best = k;
        }
        py[o * inner + i] = best;
      }
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_arg_max_min(KernelTable& t) {
  t.add({"ArgMax", run_arg});
  t.add({"ArgMin", run_arg});
}

}  // namespace kiln::cpu
