#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

// Output index i reads input index i % dim along every axis.
Status run_tile(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const auto& od = out.dims();
  const auto& id = in.dims();
  const auto strides = strides_of(id);
  const size_t rank = od.size();
  bool ok = dispatch_bytes(elem_size(in), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = in.data<U>();
    U* dst = out.data<U>();
    std::vector<int64_t> idx(rank, 0);
    for (int64_t i = 0; i < out.numel(); ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < rank; ++d) off += (idx[d] % id[d]) * strides[d];
      dst[i] = src[off];
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < od[d]) break;
        idx[d] = 0;
      }
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
}

}  // namespace

void register_cpu_tile(KernelTable& t) { t.add({"Tile", run_tile, false}); }

}  // namespace kiln::cpu
