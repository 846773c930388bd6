// Ops that only relabel dims: the output aliases the input's device memory (no copy, no launch).
#include "backends/cuda/kernel_list.h"

namespace kiln::cuda {

namespace {

Status run_view(KernelContext& ctx) {
  std::vector<int64_t> dims = ctx.output(0).dims;
  ctx.set_output(0, ctx.input(0).view(std::move(dims)));
  return Status();
}

}  // namespace

void register_cuda_views(KernelTable& t) {
  t.add({"Identity", run_view});
  t.add({"Flatten", run_view});
  // Shape/axes arrive on the host: inference reads them there, the data stays put.
  t.add({"Reshape", run_view, nullptr, 0b10});
  t.add({"Squeeze", run_view, nullptr, 0b10});
  t.add({"Unsqueeze", run_view, nullptr, 0b10});
}

}  // namespace kiln::cuda
