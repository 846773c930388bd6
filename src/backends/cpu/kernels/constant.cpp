#include <cstring>

#include "backends/cpu/kernel_list.h"
#include "ops/constant.h"

namespace kiln::cpu {

namespace {

Status run_constant(KernelContext& ctx) {
  auto v = ops::constant_node_value(ctx.node());
  if (!v.ok()) return v.status();
  ctx.set_output(0, *v);
  return Status();
}

Status run_constant_of_shape(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const auto* a = ctx.node().attr("value");
  if (!a) return Status();  // zero-filled f32 already
  const size_t es = dtype_size(out.dtype());
  auto* dst = static_cast<std::byte*>(out.raw());
  for (int64_t i = 0; i < out.numel(); ++i) std::memcpy(dst + i * es, a->t.raw(), es);
  return Status();
}

}  // namespace

void register_cpu_constant(KernelTable& t) {
  t.add({"Constant", run_constant, false});
  t.add({"ConstantOfShape", run_constant_of_shape, false});
}

}  // namespace kiln::cpu
