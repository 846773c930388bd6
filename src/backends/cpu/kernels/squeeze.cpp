#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

// Inference computed the output dims: a view of the same bytes, like Reshape.
Status run_squeeze(KernelContext& ctx) {
  std::vector<int64_t> dims = ctx.output(0).dims();
  ctx.set_output(0, ctx.input(0).reshaped(std::move(dims)));
  return Status();
}

}  // namespace

void register_cpu_squeeze(KernelTable& t) { t.add({"Squeeze", run_squeeze, false}); }

}  // namespace kiln::cpu
