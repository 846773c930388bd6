#include <cstring>

#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_identity(KernelContext& ctx) {
  ctx.set_output(0, ctx.input(0));  // tensors are immutable once produced: share storage
  return Status();
}

Status run_dropout(KernelContext& ctx) {
  // training_mode (input 2) true would need randomness; inference engines run Dropout as identity.
  if (ctx.has_input(2) && ctx.input(2).numel() > 0 && ctx.input(2).get_as_int(0) != 0) {
    const double ratio = ctx.has_input(1) ? ctx.input(1).get_as_double(0) : 0.5;
    if (ratio != 0.0) return ctx.unsupported("training_mode=true with ratio {} is a training op", ratio);
  }
  ctx.set_output(0, ctx.input(0));
  if (ctx.has_output(1)) {
    Tensor& mask = ctx.output(1);
    std::memset(mask.raw(), 1, mask.nbytes());
  }
  return Status();
}

}  // namespace

void register_cpu_identity(KernelTable& t) {
  t.add({"Identity", run_identity, false});
  t.add({"Dropout", run_dropout, false});
}

}  // namespace kiln::cpu
