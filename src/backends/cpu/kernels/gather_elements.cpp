#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

Status run_gather_elements(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  Tensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(data.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  const int64_t dim = data.dim(axis);
  // Offsets of every index position with the axis coordinate left out; the index supplies it.
  std::vector<int64_t> strides = strides_of(data.dims());
  const int64_t axis_stride = strides[axis];
  strides[axis] = 0;
  std::vector<int64_t> offsets(indices.numel());
  Status bad;
  for_each_strided(indices.dims(), strides, 0, [&](int64_t i, int64_t off) {
    int64_t v = indices.get_as_int(i);
    if (v < -dim || v >= dim) {
      if (bad.ok()) bad = ctx.error("index {} is out of range for axis {} of the data {}", v, axis, data.describe());
      v = 0;
    }
    offsets[i] = off + (v < 0 ? v + dim : v) * axis_stride;
  });
  KILN_RETURN_IF_ERROR(bad);
  bool ok = dispatch_bytes(elem_size(data), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = data.data<U>();
    U* dst = out.data<U>();
    for (size_t i = 0; i < offsets.size(); ++i) dst[i] = src[offsets[i]];
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(data.dtype()));
}

}  // namespace

void register_cpu_gather_elements(KernelTable& t) { t.add({"GatherElements", run_gather_elements, false}); }

}  // namespace kiln::cpu
