#include <cstring>

#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"
#include "ops/pad.h"

namespace kiln::cpu {

namespace {

enum class Mode { kConstant, kReflect, kEdge, kWrap };

// Maps an output coordinate (already shifted by the begin pad) into [0, n), or -1 for the constant.
int64_t source_index(Mode mode, int64_t j, int64_t n) {
  if (j >= 0 && j < n) return j;
  switch (mode) {
    case Mode::kConstant: return -1;
    case Mode::kEdge: return j < 0 ? 0 : n - 1;
    case Mode::kWrap: return ((j % n) + n) % n;
    case Mode::kReflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      j = ((j % period) + period) % period;
      return j < n ? j : period - j;
    }
  }
  return -1;
}

// The pad value as one element of the data's dtype.
Tensor pad_value(const KernelContext& ctx, DType dt) {
  if (ctx.opset() >= 11) {
    if (ctx.has_input(2) && ctx.input(2).numel() > 0) return ctx.input(2);
    return Tensor(dt, {});
  }
  return convert_tensor(Tensor::scalar_f32(ctx.node().attr_float("value", 0.f)), dt);
}

Status run_pad(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const std::string m = ctx.node().attr_string("mode", "constant");
  const Mode mode = m == "reflect" ? Mode::kReflect : m == "edge" ? Mode::kEdge : m == "wrap" ? Mode::kWrap
                                                                                              : Mode::kConstant;
  const int64_t rank = static_cast<int64_t>(in.rank());
  std::vector<int64_t> begin, end;
  const Tensor* pads = ctx.opset() >= 11 ? &ctx.input(1) : nullptr;
  const Tensor* axes = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  std::string err = ops::pad_amounts(ctx.node(), ctx.opset(), pads, axes, rank, begin, end);
  if (!err.empty()) return ctx.error("{}", err);
  const Tensor value = pad_value(ctx, in.dtype());
  const auto strides = strides_of(in.dims());
  const auto& od = out.dims();
  bool ok = dispatch_bytes(elem_size(in), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = in.data<U>();
    U* dst = out.data<U>();
    U fill;
    std::memcpy(&fill, value.raw(), sizeof(U));
    std::vector<int64_t> idx(rank, 0);
    for (int64_t i = 0; i < out.numel(); ++i) {
      int64_t off = 0;
      for (int64_t d = 0; d < rank && off >= 0; ++d) {
        const int64_t j = source_index(mode, idx[d] - begin[d], in.dim(d));
        off = j < 0 ? -1 : off + j * strides[d];
      }
      dst[i] = off < 0 ? fill : src[off];
      for (int64_t d = rank - 1; d >= 0; --d) {
        if (++idx[d] < od[d]) break;
        idx[d] = 0;
      }
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
}

}  // namespace

void register_cpu_pad(KernelTable& t) { t.add({"Pad", run_pad, false}); }

}  // namespace kiln::cpu
