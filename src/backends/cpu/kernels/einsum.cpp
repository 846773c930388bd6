// Einsum by direct summation: for each output element, sum the product of the operands over every value of
// the labels not in the output. Repeated labels in one operand add their strides (a diagonal); size-1 dims
// get stride 0 (broadcast).
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "ops/einsum.h"

namespace kiln::cpu {

namespace {

// Advances `idx` over `labels` (last fastest) and keeps each operand offset in step; false when done.
bool next_index(const std::vector<int>& labels, const std::vector<int64_t>& size, std::vector<int64_t>& idx,
                const std::vector<std::vector<int64_t>>& strides, std::vector<int64_t>& offs) {
  for (int64_t p = static_cast<int64_t>(labels.size()) - 1; p >= 0; --p) {
    const int l = labels[p];
    if (++idx[p] < size[l]) {
      for (size_t k = 0; k < offs.size(); ++k) offs[k] += strides[k][l];
      return true;
    }
    for (size_t k = 0; k < offs.size(); ++k) offs[k] -= strides[k][l] * (size[l] - 1);
    idx[p] = 0;
  }
  return false;
}

Status run_einsum(KernelContext& ctx) {
  const size_t n_in = ctx.num_inputs();
  std::vector<int64_t> ranks;
  for (size_t i = 0; i < n_in; ++i) ranks.push_back(static_cast<int64_t>(ctx.input(i).rank()));
  auto plan = ops::plan_einsum(ctx.node(), ranks);
  if (!plan.ok()) return plan.status();
  const int nl = plan->num_labels;
  std::vector<int64_t> size(nl, 1);
  std::vector<std::vector<int64_t>> strides(n_in, std::vector<int64_t>(nl, 0));
  for (size_t i = 0; i < n_in; ++i) {
    const auto& dims = ctx.input(i).dims();
    const auto st = strides_of(dims);
    for (size_t k = 0; k < dims.size(); ++k) {
      const int l = plan->inputs[i][k];
      if (dims[k] != 1) {
        size[l] = dims[k];
        strides[i][l] += st[k];
      }
    }
  }
  std::vector<bool> in_output(nl, false);
  for (int l : plan->output) in_output[l] = true;
  std::vector<int> summed;
  bool empty_sum = false;
  for (int l = 0; l < nl; ++l)
    if (!in_output[l]) {
      summed.push_back(l);
      empty_sum = empty_sum || size[l] == 0;
    }
  Tensor& y = ctx.output(0);
  bool ok = dispatch_all(ctx.input(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = std::conditional_t<std::is_floating_point_v<T>, double,
                                 std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
    std::vector<const T*> ptr(n_in);
    for (size_t i = 0; i < n_in; ++i) ptr[i] = ctx.input(i).data<T>();
    T* py = y.data<T>();
    const int64_t n_out = y.numel();
    std::vector<int64_t> out_idx(plan->output.size(), 0), sum_idx(summed.size(), 0);
    std::vector<int64_t> base(n_in, 0), offs(n_in, 0);
    for (int64_t o = 0; o < n_out; ++o) {
      A acc = 0;
      if (!empty_sum) {
        offs = base;
        do {
          A prod = 1;
          for (size_t i = 0; i < n_in; ++i) prod *= static_cast<A>(ptr[i][offs[i]]);
          acc += prod;
        } while (next_index(summed, size, sum_idx, strides, offs));
      }
      py[o] = static_cast<T>(acc);
      next_index(plan->output, size, out_idx, strides, base);
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(ctx.input(0).dtype()));
}

}  // namespace

void register_cpu_einsum(KernelTable& t) {
  t.add({"Einsum", run_einsum});
}

}  // namespace kiln::cpu
