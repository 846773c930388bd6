// CumSum: running sums along one axis; floats accumulate in double, integers in 64-bit integers.
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_cum_sum(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, ctx.scalar_int(1));
  if (axis < 0) axis += rank;
  const bool exclusive = ctx.node().attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.node().attr_int("reverse", 0) != 0;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int64_t i = axis + 1; i < rank; ++i) inner *= x.dim(i);
  const int64_t n = x.dim(axis);
  Tensor& y = ctx.output(0);
  bool ok = dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = std::conditional_t<std::is_floating_point_v<T>, double,
                                 std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        A acc = 0;
        for (int64_t step = 0; step < n; ++step) {
          const int64_t k = reverse ? n - 1 - step : step;
          const int64_t at = (o * n + k) * inner + i;
          if (exclusive) {
            py[at] = static_cast<T>(acc);
            acc += static_cast<A>(px[at]);
          } else {
            acc += static_cast<A>(px[at]);
            py[at] = static_cast<T>(acc);
          }
        }
      }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_cum_sum(KernelTable& t) {
  t.add({"CumSum", run_cum_sum});
}

}  // namespace kiln::cpu
