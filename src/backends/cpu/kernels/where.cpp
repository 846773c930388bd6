#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

Status run_where(KernelContext& ctx) {
  const Tensor& cond = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& y = ctx.input(2);
  Tensor& out = ctx.output(0);
  const auto& od = out.dims();
  const auto sc = broadcast_strides(cond.dims(), od);
  const auto sx = broadcast_strides(x.dims(), od);
  const auto sy = broadcast_strides(y.dims(), od);
  const size_t rank = od.size();
  bool ok = dispatch_bytes(elem_size(x), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const uint8_t* pc = cond.data<uint8_t>();
    const U* px = x.data<U>();
    const U* py = y.data<U>();
    U* po = out.data<U>();
    std::vector<int64_t> idx(rank, 0);
    int64_t oc = 0, ox = 0, oy = 0;
    for (int64_t i = 0; i < out.numel(); ++i) {
      po[i] = pc[oc] ? px[ox] : py[oy];
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < od[d]) {
          oc += sc[d], ox += sx[d], oy += sy[d];
          break;
        }
        oc -= sc[d] * (od[d] - 1), ox -= sx[d] * (od[d] - 1), oy -= sy[d] * (od[d] - 1);
        idx[d] = 0;
      }
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_where(KernelTable& t) { t.add({"Where", run_where, false}); }

}  // namespace kiln::cpu
