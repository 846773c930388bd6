// ConvInteger and QLinearConv: zero points are subtracted up front (so padding reads as the zero point), then
// a direct N-D grouped convolution accumulates in int32.
#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/quant_common.h"
#include "ops/conv_integer.h"

namespace kiln::cpu {

namespace {

// Per-output-channel parameters [M] broadcast over the weight [M, C/group, k...].
std::vector<int64_t> channel_param_dims(const Tensor* p, size_t weight_rank) {
  if (!p || p->numel() <= 1) return {};
  std::vector<int64_t> d(weight_rank, 1);
  d[0] = p->numel();
  return d;
}

// acc[n, m, out...] over int32 operands with zero points removed.
Status conv_accumulate(KernelContext& ctx, const Tensor& x, const Tensor* x_zp, const Tensor& w, const Tensor* w_zp,
                       std::vector<int32_t>& acc, std::vector<int64_t>& out_dims) {
  const std::vector<int64_t> in(x.dims().begin() + 2, x.dims().end());
  const std::vector<int64_t> ks(w.dims().begin() + 2, w.dims().end());
  ops::QuantConvGeometry g;
  if (std::string err = ops::quant_conv_geometry(ctx.node(), in, ks, g); !err.empty()) return ctx.error("{}", err);
  const auto xv = subtract_zero_point(x, x_zp, {});
  const auto wv = subtract_zero_point(w, w_zp, channel_param_dims(w_zp, w.rank()));
  const int64_t batch = x.dim(0), channels = x.dim(1), m_total = w.dim(0), cg = w.dim(1);
  const int64_t mg = m_total / g.group;
  const size_t nsp = in.size();
  const int64_t in_size = num_elements(in), k_size = num_elements(g.kernel), out_size = num_elements(g.out);
  out_dims = {batch, m_total};
  out_dims.insert(out_dims.end(), g.out.begin(), g.out.end());
  acc.assign(static_cast<size_t>(batch * m_total * out_size), 0);
  const auto in_strides = strides_of(in);
  const auto k_strides = strides_of(g.kernel);
  const auto out_strides = strides_of(g.out);
  std::vector<int64_t> opos(nsp), kpos(nsp);
  for (int64_t o = 0; o < out_size; ++o) {
    for (size_t d = 0; d < nsp; ++d) opos[d] = (o / out_strides[d]) % g.out[d];
    for (int64_t kk = 0; kk < k_size; ++kk) {
      int64_t in_off = 0;
      bool inside = true;
      for (size_t d = 0; d < nsp && inside; ++d) {
        kpos[d] = (kk / k_strides[d]) % g.kernel[d];
        const int64_t p = opos[d] * g.strides[d] - g.pad_begin[d] + kpos[d] * g.dilations[d];
        inside = p >= 0 && p < in[d];
        in_off += p * in_strides[d];
      }
      if (!inside) continue;
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t m = 0; m < m_total; ++m) {
          const int64_t grp = m / mg;
          int32_t sum = 0;
          for (int64_t c = 0; c < cg; ++c) {
            const int32_t xval = xv[((n * channels) + grp * cg + c) * in_size + in_off];
            sum += xval * wv[(m * cg + c) * k_size + kk];
          }
          acc[(n * m_total + m) * out_size + o] += sum;
        }
    }
  }
  return Status();
}

Status run_conv_integer(KernelContext& ctx) {
  std::vector<int32_t> acc;
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(conv_accumulate(ctx, ctx.input(0), ctx.has_input(2) ? &ctx.input(2) : nullptr, ctx.input(1),
                                       ctx.has_input(3) ? &ctx.input(3) : nullptr, acc, dims));
  std::copy(acc.begin(), acc.end(), ctx.output(0).data<int32_t>());
  return Status();
}

Status run_qlinear_conv(KernelContext& ctx) {
  const Tensor& w = ctx.input(3);
  std::vector<int32_t> acc;
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(conv_accumulate(ctx, ctx.input(0), &ctx.input(2), w, &ctx.input(5), acc, dims));
  const int64_t m_total = dims[1];
  const int64_t out_size = num_elements(std::vector<int64_t>(dims.begin() + 2, dims.end()));
  const double x_scale = ctx.input(1).get_as_double(0);
  const double y_scale = ctx.input(6).get_as_double(0);
  const double y_zp = ctx.input(7).get_as_double(0);
  const Tensor& w_scale = ctx.input(4);
  const Tensor* bias = ctx.has_input(8) ? &ctx.input(8) : nullptr;
  Tensor& y = ctx.output(0);
  dispatch_all(y.dtype(), [&](auto tag) {
    using Q = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<Q>) {
      Q* py = y.data<Q>();
      for (size_t i = 0; i < acc.size(); ++i) {
        const int64_t m = (static_cast<int64_t>(i) / out_size) % m_total;
        const double ws = w_scale.get_as_double(w_scale.numel() == 1 ? 0 : m);
        const int64_t b = bias ? bias->get_as_int(bias->numel() == 1 ? 0 : m) : 0;
        py[i] = saturate_round<Q>(static_cast<double>(acc[i] + b) * (x_scale * ws / y_scale) + y_zp);
      }
    }
  });
  return Status();
}

}  // namespace

void register_cpu_conv_integer(KernelTable& t) {
  t.add({"ConvInteger", run_conv_integer});
  t.add({"QLinearConv", run_qlinear_conv});
}

}  // namespace kiln::cpu
