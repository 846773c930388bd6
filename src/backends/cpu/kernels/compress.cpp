#include <cstring>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

Status run_compress(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const Tensor& cond = ctx.input(1);
  const bool has_axis = ctx.node().has_attr("axis");
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(in.rank());
  // Without an axis, the input is one flat row.
  const int64_t outer = has_axis ? dims_product(in.dims(), 0, axis) : 1;
  const int64_t dim = has_axis ? in.dim(axis) : in.numel();
  const int64_t inner = has_axis ? dims_product(in.dims(), axis + 1, in.rank()) : 1;
  const int64_t n = std::min(dim, cond.numel());
  if (cond.numel() > dim)
    return ctx.error("the condition has {} entries but the compressed axis has only {}", cond.numel(), dim);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i)
    if (cond.data<uint8_t>()[i]) keep.push_back(i);
  std::vector<int64_t> dims = has_axis ? in.dims() : std::vector<int64_t>{0};
  dims[has_axis ? axis : 0] = static_cast<int64_t>(keep.size());
  Tensor& out = ctx.allocate_output(0, in.dtype(), dims);
  const size_t es = elem_size(in);
  const size_t chunk = static_cast<size_t>(inner) * es;
  auto* dst = static_cast<std::byte*>(out.raw());
  const auto* src = static_cast<const std::byte*>(in.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k : keep) {
      std::memcpy(dst, src + static_cast<size_t>(o * dim + k) * chunk, chunk);
      dst += chunk;
    }
  return Status();
}

}  // namespace

void register_cpu_compress(KernelTable& t) { t.add({"Compress", run_compress, false}); }

}  // namespace kiln::cpu
