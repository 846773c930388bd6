#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_non_zero(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const size_t rank = in.rank();
  std::vector<int64_t> hits;
  for (int64_t i = 0; i < in.numel(); ++i)
    if (in.get_as_double(i) != 0.0) hits.push_back(i);
  const int64_t n = static_cast<int64_t>(hits.size());
  Tensor& out = ctx.allocate_output(0, DType::kI64, {static_cast<int64_t>(rank), n});
  int64_t* po = out.data<int64_t>();
  for (int64_t k = 0; k < n; ++k) {
    int64_t rest = hits[k];
    for (size_t d = rank; d-- > 0;) {
      po[d * n + k] = rest % in.dim(d);
      rest /= in.dim(d);
    }
  }
  return Status();
}

}  // namespace

// get_as_double reads f16/bf16 directly, so no widening is needed.
void register_cpu_non_zero(KernelTable& t) { t.add({"NonZero", run_non_zero, false}); }

}  // namespace kiln::cpu
