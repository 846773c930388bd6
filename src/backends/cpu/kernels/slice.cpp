#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"
#include "ops/slice.h"

namespace kiln::cpu {

namespace {

// A slice is a strided view: base offset from the starts, strides scaled by the steps.
Status run_slice(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(in.rank());
  auto in_at = [&](size_t i) { return ctx.has_input(i) ? &ctx.input(i) : nullptr; };
  ops::SliceParams p = ops::slice_params(ctx.node(), ctx.opset(), in_at(1), in_at(2), in_at(3), in_at(4));
  std::vector<int64_t> strides = strides_of(in.dims());
  int64_t base = 0;
  for (size_t i = 0; i < p.starts.size(); ++i) {
    const int64_t axis = p.axes[i] < 0 ? p.axes[i] + rank : p.axes[i];
    ops::SliceAxis s = ops::resolve_slice(in.dim(axis), p.starts[i], p.ends[i], p.steps[i]);
    base += s.start * strides[axis];
    strides[axis] *= p.steps[i];
  }
  if (!strided_copy(in, out, strides, base)) return ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
  return Status();
}

}  // namespace

void register_cpu_slice(KernelTable& t) { t.add({"Slice", run_slice, false}); }

}  // namespace kiln::cpu
