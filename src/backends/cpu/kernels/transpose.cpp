#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

Status run_transpose(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(in.rank());
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (!ctx.node().has_attr("perm"))
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  const auto in_strides = strides_of(in.dims());
  std::vector<int64_t> strides(rank);
  for (int64_t i = 0; i < rank; ++i) strides[i] = in_strides[perm[i]];
  if (!strided_copy(in, out, strides, 0)) return ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
  return Status();
}

}  // namespace

void register_cpu_transpose(KernelTable& t) { t.add({"Transpose", run_transpose, false}); }

}  // namespace kiln::cpu
