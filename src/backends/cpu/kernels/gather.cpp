#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

Status run_gather(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  Tensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(data.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  const int64_t outer = dims_product(data.dims(), 0, axis);
  const int64_t dim = data.dim(axis);
  const int64_t inner = dims_product(data.dims(), axis + 1, rank);
  const int64_t n = indices.numel();
  std::vector<int64_t> idx(n);
  for (int64_t j = 0; j < n; ++j) {
    int64_t v = indices.get_as_int(j);
    if (v < -dim || v >= dim)
      return ctx.error("index {} is out of range for axis {} of the data {}", v, axis, data.describe());
    idx[j] = v < 0 ? v + dim : v;
  }
  bool ok = dispatch_bytes(elem_size(data), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = data.data<U>();
    U* dst = out.data<U>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < n; ++j) {
        const U* s = src + (o * dim + idx[j]) * inner;
        U* d = dst + (o * n + j) * inner;
        for (int64_t k = 0; k < inner; ++k) d[k] = s[k];
      }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(data.dtype()));
}

}  // namespace

void register_cpu_gather(KernelTable& t) { t.add({"Gather", run_gather, false}); }

}  // namespace kiln::cpu
