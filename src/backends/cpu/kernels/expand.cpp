#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

Status run_expand(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  if (!strided_copy(in, out, broadcast_strides(in.dims(), out.dims()), 0))
    return ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
  return Status();
}

}  // namespace

void register_cpu_expand(KernelTable& t) { t.add({"Expand", run_expand, false}); }

}  // namespace kiln::cpu
