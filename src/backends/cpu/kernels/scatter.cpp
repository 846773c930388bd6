#include <algorithm>
#include <cstring>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Reduction reduction_of(const ir::Node& node) {
  const std::string r = node.attr_string("reduction", "none");
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  return Reduction::kNone;
}

template <class T>
T reduce(Reduction r, T a, T b) {
  switch (r) {
    case Reduction::kNone: return b;
    case Reduction::kAdd: return static_cast<T>(a + b);
    case Reduction::kMul: return static_cast<T>(a * b);
    case Reduction::kMax: return std::max(a, b);
    case Reduction::kMin: return std::min(a, b);
  }
  return b;
}

// Writes updates[i] into out[offsets[i]] in order, so later duplicates win (or accumulate).
Status apply(KernelContext& ctx, const std::vector<int64_t>& offsets, int64_t slice) {
  const Tensor& data = ctx.input(0);
  const Tensor& updates = ctx.input(2);
  Tensor& out = ctx.output(0);
  std::memcpy(out.raw(), data.raw(), data.nbytes());
  const Reduction red = reduction_of(ctx.node());
  bool ok = dispatch_all(data.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* u = updates.data<T>();
    T* o = out.data<T>();
    for (size_t t = 0; t < offsets.size(); ++t)
      for (int64_t e = 0; e < slice; ++e) o[offsets[t] + e] = reduce(red, o[offsets[t] + e], u[t * slice + e]);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(data.dtype()));
}

Status run_scatter_elements(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const int64_t rank = static_cast<int64_t>(data.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  const int64_t dim = data.dim(axis);
  for (size_t d = 0; d < data.rank(); ++d)
    if (indices.dim(d) > data.dim(d))
      return ctx.error("indices {} do not fit in the data {}", indices.describe(), data.describe());
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
  return apply(ctx, offsets, 1);
}

Status run_scatter_nd(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const int64_t k = indices.dim(indices.rank() - 1);
  const int64_t tuples = dims_product(indices.dims(), 0, indices.rank() - 1);
  const int64_t slice = dims_product(data.dims(), k, data.rank());
  const auto strides = strides_of(data.dims());
  std::vector<int64_t> offsets(tuples);
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t dim = data.dim(j);
      const int64_t v = indices.get_as_int(t * k + j);
      if (v < -dim || v >= dim)
        return ctx.error("index {} is out of range for dim {} of the data {}", v, j, data.describe());
      off += (v < 0 ? v + dim : v) * strides[j];
    }
    offsets[t] = off;
  }
  return apply(ctx, offsets, slice);
}

}  // namespace

// Reductions need arithmetic, so f16/bf16 go through f32; plain writes stay exact that way.
void register_cpu_scatter(KernelTable& t) {
  t.add({"ScatterElements", run_scatter_elements});
  t.add({"Scatter", run_scatter_elements});
  t.add({"ScatterND", run_scatter_nd});
}

}  // namespace kiln::cpu
