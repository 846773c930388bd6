#include <cstring>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

// Inference sized every output; each takes its run of the axis from every outer index.
Status run_split(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(in.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  const size_t es = elem_size(in);
  const int64_t outer = dims_product(in.dims(), 0, axis);
  const int64_t inner = dims_product(in.dims(), axis + 1, rank);
  const int64_t dim = in.dim(axis);
  const auto* src = static_cast<const std::byte*>(in.raw());
  int64_t start = 0;
  for (size_t k = 0; k < ctx.num_outputs(); ++k) {
    if (!ctx.has_output(k)) return ctx.unsupported("output {} is omitted; its size would be unknown", k);
    const int64_t size = ctx.output(k).dim(axis);
    auto* dst = static_cast<std::byte*>(ctx.output(k).raw());
    const size_t chunk = static_cast<size_t>(size * inner) * es;
    for (int64_t o = 0; o < outer && chunk > 0; ++o)
      std::memcpy(dst + o * chunk, src + static_cast<size_t>((o * dim + start) * inner) * es, chunk);
    start += size;
  }
  return Status();
}

}  // namespace

void register_cpu_split(KernelTable& t) { t.add({"Split", run_split, false}); }

}  // namespace kiln::cpu
