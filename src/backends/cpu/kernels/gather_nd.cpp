#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

Status run_gather_nd(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  Tensor& out = ctx.output(0);
  const size_t b = static_cast<size_t>(ctx.node().attr_int("batch_dims", 0));
  const size_t q = indices.rank();
  const int64_t k = indices.dim(q - 1);
  const int64_t batches = dims_product(data.dims(), 0, b);
  const int64_t batch_elems = dims_product(data.dims(), b, data.rank());
  const int64_t per_batch = dims_product(indices.dims(), b, q - 1);  // index tuples per batch
  const int64_t slice = dims_product(data.dims(), b + k, data.rank());
  const auto strides = strides_of(data.dims());
  // Flat element offset (within its batch) of every index tuple, checked once.
  std::vector<int64_t> offsets(batches * per_batch);
  for (int64_t t = 0; t < batches * per_batch; ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t dim = data.dim(b + j);
      int64_t v = indices.get_as_int(t * k + j);
      if (v < -dim || v >= dim)
        return ctx.error("index {} is out of range for dim {} of the data {}", v, b + j, data.describe());
      off += (v < 0 ? v + dim : v) * strides[b + j];
    }
    offsets[t] = (t / per_batch) * batch_elems + off;
  }
  bool ok = dispatch_bytes(elem_size(data), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = data.data<U>();
    U* dst = out.data<U>();
    for (size_t t = 0; t < offsets.size(); ++t)
      for (int64_t e = 0; e < slice; ++e) dst[t * slice + e] = src[offsets[t] + e];
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(data.dtype()));
}

}  // namespace

void register_cpu_gather_nd(KernelTable& t) { t.add({"GatherND", run_gather_nd, false}); }

}  // namespace kiln::cpu
