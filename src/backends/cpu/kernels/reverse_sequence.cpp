#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

Status run_reverse_sequence(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const Tensor& lens = ctx.input(1);
  Tensor& out = ctx.output(0);
  const size_t time_axis = static_cast<size_t>(ctx.node().attr_int("time_axis", 0));
  const size_t batch_axis = 1 - time_axis;
  const int64_t steps = in.dim(time_axis);
  std::vector<int64_t> len(lens.numel());
  for (size_t b = 0; b < len.size(); ++b) {
    len[b] = lens.get_as_int(static_cast<int64_t>(b));
    if (len[b] < 0 || len[b] > steps)
      return ctx.error("sequence_lens[{}] = {} is outside [0, {}]", b, len[b], steps);
  }
  const int64_t time_stride = strides_of(in.dims())[time_axis];
  const auto& dims = in.dims();
  bool ok = dispatch_bytes(elem_size(in), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = in.data<U>();
    U* dst = out.data<U>();
    std::vector<int64_t> idx(dims.size(), 0);
    for (int64_t i = 0; i < in.numel(); ++i) {
      const int64_t t = idx[time_axis], l = len[idx[batch_axis]];
      dst[i] = t < l ? src[i + (l - 1 - 2 * t) * time_stride] : src[i];
      for (size_t d = dims.size(); d-- > 0;) {
        if (++idx[d] < dims[d]) break;
        idx[d] = 0;
      }
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
}

}  // namespace

void register_cpu_reverse_sequence(KernelTable& t) { t.add({"ReverseSequence", run_reverse_sequence, false}); }

}  // namespace kiln::cpu
