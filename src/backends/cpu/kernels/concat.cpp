#include <cstring>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

// Each input contributes one contiguous chunk of dims[axis:] per outer index.
Status run_concat(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(out.rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < 0) axis += rank;
  const size_t es = elem_size(out);
  const int64_t outer = dims_product(out.dims(), 0, axis);
  auto* dst = static_cast<std::byte*>(out.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& in = ctx.input(i);
      const size_t chunk = static_cast<size_t>(dims_product(in.dims(), axis, in.rank())) * es;
      if (chunk == 0) continue;
      std::memcpy(dst, static_cast<const std::byte*>(in.raw()) + o * chunk, chunk);
      dst += chunk;
    }
  }
  return Status();
}

}  // namespace

void register_cpu_concat(KernelTable& t) { t.add({"Concat", run_concat, false}); }

}  // namespace kiln::cpu
