#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_cast(KernelContext& ctx) {
  ctx.set_output(0, convert_tensor(ctx.input(0), ctx.output(0).dtype()));
  return Status();
}

}  // namespace

void register_cpu_cast(KernelTable& t) {
  t.add({"Cast", run_cast, false});
  t.add({"CastLike", run_cast, false});
}

}  // namespace kiln::cpu
