// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear.
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/quant_common.h"

namespace kiln::cpu {

namespace {

// Maps an element of x to its scale / zero point: one for all, one per index along axis, or one per block.
struct ParamIndex {
  bool per_tensor = true;
  int64_t axis_dim = 1, inner = 1, block = 0, scale_axis_dim = 1;

  int64_t operator()(int64_t i) const {
    if (per_tensor) return 0;
    const int64_t in = i % inner;
    const int64_t d = (i / inner) % axis_dim;
    if (block == 0) return d;
    const int64_t o = i / (inner * axis_dim);
    return (o * scale_axis_dim + d / block) * inner + in;
  }
};

ParamIndex param_index(const KernelContext& ctx, const Tensor& x, const Tensor& scale) {
  ParamIndex p;
  p.block = ctx.node().attr_int("block_size", 0);
  if (p.block == 0 && scale.numel() == 1) return p;
  p.per_tensor = false;
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < 0) axis += rank;
  p.axis_dim = x.dim(axis);
  for (int64_t d = axis + 1; d < rank; ++d) p.inner *= x.dim(d);
  if (p.block > 0) p.scale_axis_dim = scale.dim(axis);
  return p;
}

Status run_quantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  Tensor& y = ctx.output(0);
  const ParamIndex pi = param_index(ctx, x, scale);
  const bool x_float = x.dtype() == DType::kF32;
  bool ok = dispatch_all(y.dtype(), [&](auto tag) {
    using Q = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<Q>) {
      Q* py = y.data<Q>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t p = pi(i);
        // Divide in f32 like the reference when x is f32, so ties round the same way.
        const double scaled = x_float ? static_cast<double>(x.data<float>()[i] / static_cast<float>(scale.get_as_double(p)))
                                      : x.get_as_double(i) / scale.get_as_double(p);
        const double z = zp ? zp->get_as_double(p) : 0.0;
        py[i] = saturate_round<Q>(std::nearbyint(scaled) + z);
      }
    }
  });
  return ok ? Status() : ctx.unsupported("output dtype {} is not supported", dtype_name(y.dtype()));
}

Status run_dequantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  Tensor& y = ctx.output(0);
  const ParamIndex pi = param_index(ctx, x, scale);
  bool ok = dispatch_float(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t p = pi(i);
      const int64_t z = zp ? zp->get_as_int(p) : 0;
      py[i] = static_cast<T>(static_cast<T>(x.get_as_int(i) - z) * static_cast<T>(scale.get_as_double(p)));
    }
  });
  return ok ? Status() : ctx.unsupported("output dtype {} is not supported", dtype_name(y.dtype()));
}

// u8 range [0, 255] must include 0 so that zero is exactly representable.
Status run_dynamic_quantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  float lo = 0.f, hi = 0.f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = static_cast<float>(x.get_as_double(i));
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const float scale = (hi - lo) / 255.f;
  const uint8_t zp = scale == 0.f ? uint8_t(0) : saturate_round<uint8_t>((0.f - lo) / scale);
  uint8_t* py = ctx.output(0).data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = static_cast<float>(x.get_as_double(i));
    py[i] = scale == 0.f ? zp : saturate_round<uint8_t>(std::nearbyint(v / scale) + zp);
  }
  ctx.output(1).data<float>()[0] = scale;
  ctx.output(2).data<uint8_t>()[0] = zp;
  return Status();
}

}  // namespace

void register_cpu_quantize_linear(KernelTable& t) {
  t.add({"QuantizeLinear", run_quantize});
  t.add({"DequantizeLinear", run_dequantize});
  t.add({"DynamicQuantizeLinear", run_dynamic_quantize});
}

}  // namespace kiln::cpu
