// MaxUnpool, as the ONNX reference defines it: indices address the unpooled shape the attributes imply
// ((in - 1) * stride + kernel - pads); a given output_shape then holds that result in its leading corner.
#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "ops/conv_pool_attrs.h"

namespace kiln::cpu {

namespace {

Status run_max_unpool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& idx = ctx.input(1);
  Tensor& y = ctx.output(0);  // sized by run-time inference, from output_shape when given
  const size_t n_sp = x.rank() - 2;
  KILN_ASSIGN_OR_RETURN(ops::Window w, ops::read_window(ctx.node(), n_sp, {}));
  std::vector<int64_t> implied{x.dim(0), x.dim(1)};
  for (size_t i = 0; i < n_sp; ++i)
    implied.push_back((x.dim(2 + i) - 1) * w.strides[i] + w.kernel[i] - w.pad_begin[i] - w.pad_end[i]);
  const int64_t n = num_elements(implied);
  const int64_t* pi = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i)
    if (pi[i] < 0 || pi[i] >= n)
      return ctx.error("index {} at position {} is outside the unpooled shape {} ({} elements)", pi[i], i,
                       dims_to_string(implied), n);
  bool ok = dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    if (implied == y.dims()) {
      for (int64_t i = 0; i < x.numel(); ++i) py[pi[i]] = px[i];
      return;
    }
    std::vector<T> full(static_cast<size_t>(n), T(0));
    for (int64_t i = 0; i < x.numel(); ++i) full[pi[i]] = px[i];
    const auto ys = strides_of(y.dims());
    std::vector<int64_t> at(implied.size(), 0);
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < at.size(); ++d) {
        inside = inside && at[d] < y.dim(d);
        off += at[d] * ys[d];
      }
      if (inside) py[off] = full[i];
      ops::next_index(at, implied);
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_max_unpool(KernelTable& t) { t.add({"MaxUnpool", run_max_unpool}); }

}  // namespace kiln::cpu
