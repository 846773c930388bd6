#include <algorithm>

#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_shape(KernelContext& ctx) {
  const auto& dims = ctx.input(0).dims();
  const int64_t rank = static_cast<int64_t>(dims.size());
  int64_t start = ctx.node().attr_int("start", 0), end = ctx.node().attr_int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  Tensor& out = ctx.output(0);
  for (int64_t i = start; i < end; ++i) out.data<int64_t>()[i - start] = dims[i];
  return Status();
}

Status run_size(KernelContext& ctx) {
  *ctx.output(0).data<int64_t>() = ctx.input(0).numel();
  return Status();
}

}  // namespace

void register_cpu_shape(KernelTable& t) {
  t.add({"Shape", run_shape, false});
  t.add({"Size", run_size, false});
}

}  // namespace kiln::cpu
