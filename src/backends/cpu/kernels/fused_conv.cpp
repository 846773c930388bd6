// FusedConv reference: composes the reference Conv kernel (run through run_node, so the same inference and
// window code as an unfused Conv) with plain loops for + Z and the activation. NHWC inputs are permuted to
// NCHW around it: the reference stays obviously correct, the layout only matters for speed on the GPU.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/executor.h"
#include "backends/cpu/kernel_list.h"
#include "ops/fused_conv.h"

namespace kiln::cpu {

namespace {

// out axis i = in axis perm[i]; any dtype (moves bytes).
Tensor permute(const Tensor& t, const std::vector<size_t>& perm) {
  std::vector<int64_t> dims;
  for (size_t p : perm) dims.push_back(t.dim(p));
  Tensor out(t.dtype(), dims);
  const int64_t n = out.numel();
  if (n == 0) return out;
  const std::vector<int64_t> in_strides = strides_of(t.dims());
  std::vector<int64_t> src(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) src[i] = in_strides[perm[i]];
  const size_t es = elem_size(t);
  const char* pin = static_cast<const char*>(t.raw());
  char* pout = static_cast<char*>(out.raw());
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t o = 0; o < n; ++o) {
    int64_t off = 0;
    for (size_t d = 0; d < dims.size(); ++d) off += idx[d] * src[d];
    std::memcpy(pout + o * es, pin + off * es, es);
    for (size_t d = dims.size(); d-- > 0;) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

template <class T>
void add_and_activate(T* y, const T* z, int64_t n, ops::ConvActivation act, ops::ConvClip clip) {
  for (int64_t i = 0; i < n; ++i) {
    T v = y[i];
    if (z) v += z[i];
    switch (act) {
      case ops::ConvActivation::kNone:
        break;
      case ops::ConvActivation::kRelu:
        v = v > T(0) ? v : T(0);
        break;  // as Relu: NaN -> 0
      case ops::ConvActivation::kSigmoid:
        v = static_cast<T>(1.0 / (1.0 + std::exp(-static_cast<double>(v))));
        break;
      case ops::ConvActivation::kSilu:
        v = static_cast<T>(static_cast<double>(v) / (1.0 + std::exp(-static_cast<double>(v))));
        break;
      case ops::ConvActivation::kClip: {  // as Clip: NaN stays NaN
        const double d = static_cast<double>(v);
        v = static_cast<T>(d < clip.lo ? static_cast<double>(clip.lo) : d > clip.hi ? static_cast<double>(clip.hi) : d);
        break;
      }
      case ops::ConvActivation::kHardSwish: {  // as HardSwish: x * max(0, min(1, x / 6 + 0.5))
        const double d = static_cast<double>(v);
        v = static_cast<T>(d * std::max(0.0, std::min(1.0, d / 6.0 + 0.5)));
        break;
      }
    }
    y[i] = v;
  }
}

Status run_fused_conv(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  KILN_ASSIGN_OR_RETURN(ops::ConvActivation act, ops::read_conv_activation(node));
  KILN_ASSIGN_OR_RETURN(ops::ConvClip clip, ops::read_conv_clip(node));
  KILN_ASSIGN_OR_RETURN(ops::ConvLayout layout, ops::read_conv_layout(node));
  const bool nhwc = layout == ops::ConvLayout::kNHWC;
  const Tensor& x = ctx.input(ops::kFusedConvX);
  const Tensor& w = ctx.input(ops::kFusedConvW);
  const size_t rank = x.rank();

  Tensor xc, wc;
  if (nhwc) {
    xc = permute(x, ops::to_channels_first(rank));
    wc = permute(w, ops::to_channels_first(w.rank()));
  }
  std::vector<const Tensor*> ins{nhwc ? &xc : &x, nhwc ? &wc : &w};
  if (ctx.has_input(ops::kFusedConvB)) ins.push_back(&ctx.input(ops::kFusedConvB));
  const ir::Node conv = ops::conv_node_of(node);
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_node(conv, ctx.opset(), ins));
  Tensor y = nhwc ? permute(outs[0], ops::to_channels_last(rank)) : std::move(outs[0]);

  const Tensor* z = ctx.has_input(ops::kFusedConvZ) ? &ctx.input(ops::kFusedConvZ) : nullptr;
  if (z && (z->dims() != y.dims() || z->dtype() != y.dtype()))
    return ctx.error("residual Z {} must match the convolution's output {}", z->describe(), y.describe());
  bool ok = dispatch_float(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    add_and_activate<T>(y.data<T>(), z ? z->data<T>() : nullptr, y.numel(), act, clip);
  });
  if (!ok) return ctx.unsupported("dtype {} is not supported", dtype_name(y.dtype()));
  ctx.set_output(0, std::move(y));
  return Status();
}

}  // namespace

void register_cpu_fused_conv(KernelTable& t) {
  t.add({"FusedConv", run_fused_conv});
}

}  // namespace kiln::cpu
