// Slice (every opset: attributes before 10, starts/ends/axes/steps inputs read on the host after): a strided
// view of the input, copied with copy_common.cuh's strided copy. ONNX clamping and negative steps come from
// ops/slice.h, the same code inference and the CPU kernel use, so all three agree on every boundary.
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"
#include "ops/slice.h"

namespace kiln::cuda {

namespace {

Status run_slice(KernelContext& ctx) {
  const DeviceTensor& in = ctx.input(0);
  DeviceTensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(in.rank());
  auto host = [&](size_t i) { return ctx.has_input(i) ? ctx.host_input(i) : nullptr; };
  if (ctx.opset() >= 10 && (!host(1) || !host(2))) return ctx.error("starts and ends are required inputs");
  ops::SliceParams p = ops::slice_params(ctx.node(), ctx.opset(), host(1), host(2), host(3), host(4));
  if (p.ends.size() != p.starts.size() || p.axes.size() != p.starts.size() ||
      p.steps.size() != p.starts.size())
    return ctx.error("starts {}, ends {}, axes {} and steps {} must have the same length",
                     dims_to_string(p.starts), dims_to_string(p.ends), dims_to_string(p.axes),
                     dims_to_string(p.steps));
  std::vector<int64_t> strides = copy::strides_of(in.dims);
  int64_t base = 0;
  for (size_t i = 0; i < p.starts.size(); ++i) {
    const int64_t axis = p.axes[i] < 0 ? p.axes[i] + rank : p.axes[i];
    if (axis < 0 || axis >= rank) return ctx.error("axis {} is out of range for rank {}", p.axes[i], rank);
    if (p.steps[i] == 0) return ctx.error("step 0 on axis {}", axis);
    const ops::SliceAxis s = ops::resolve_slice(in.dims[axis], p.starts[i], p.ends[i], p.steps[i]);
    if (s.size > 0) base += s.start * strides[axis];
    strides[axis] *= p.steps[i];
  }
  Status st =
      copy::strided_copy(in.data, base, out.dims, strides, dtype_size(in.dtype), out.data, ctx.stream());
  if (!st.ok()) return ctx.error("{} (input {})", st.message(), dims_to_string(in.dims));
  return Status();
}

}  // namespace

// starts, ends, axes, steps: parameters read on the host (inference needs them there too).
void register_cuda_slice(KernelTable& t) {
  t.add({"Slice", run_slice, copy::movable_first, 0b11110});
}

}  // namespace kiln::cuda
