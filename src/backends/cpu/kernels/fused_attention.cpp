// FusedAttention reference: the unfused math written out (scores = scale * Q K^T, mask, softmax over keys, P
// V), accumulated in double, one query row at a time so no [Sq, Sk] matrix is kept. Special cases follow the
// unfused graph: a row whose scores are all -inf gives NaN (softmax of -inf - -inf), or 0 with nan_to_zero
// (there any NaN probability becomes 0, as torch's IsNaN/Where guard does); Sk == 0 gives zeros (an empty
// sum).
#include <cmath>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

// Row-major strides of a [B, H, S, X] tensor with 0 on broadcast (size-1) batch/head dims.
struct Strides4 {
  int64_t b = 0, h = 0, s = 0, x = 0;
};
Strides4 bh_strides(const Tensor& t) {
  const auto& d = t.dims();
  Strides4 st;
  st.x = 1;
  st.s = d[3];
  st.h = d[2] * d[3];
  st.b = d[1] * st.h;
  if (d[0] == 1) st.b = 0;
  if (d[1] == 1) st.h = 0;
  return st;
}

Status run_fused_attention(KernelContext& ctx) {
  const Tensor &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
  Tensor& y = ctx.output(0);
  const int64_t B = y.dim(0), H = y.dim(1), Sq = q.dim(2), D = q.dim(3), Sk = k.dim(2), Dv = v.dim(3);
  const int64_t Hk = k.dim(1), Hv = v.dim(1);
  const double scale = ctx.node().has_attr("scale") ? static_cast<double>(ctx.node().attr_float("scale", 1.f))
                                                    : 1.0 / std::sqrt(static_cast<double>(D > 0 ? D : 1));
  const bool causal = ctx.node().attr_int("causal", 0) != 0;
  const bool nan_to_zero = ctx.node().attr_int("nan_to_zero", 0) != 0;
  if (y.numel() == 0) return Status();
  const Tensor* mask = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  std::vector<int64_t> mstr;
  if (mask) mstr = broadcast_strides(mask->dims(), {B, H, Sq, Sk});
  const Strides4 sq = bh_strides(q), sk = bh_strides(k), sv = bh_strides(v);
  const int64_t k_group = Hk > 0 ? H / Hk : 1, v_group = Hv > 0 ? H / Hv : 1;
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<double> s(static_cast<size_t>(Sk)), acc(static_cast<size_t>(Dv));
  bool ok = dispatch_float(q.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>();
    T* py = y.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const T* qbh = pq + b * sq.b + h * sq.h;
        const T* kbh = pk + b * sk.b + (h / k_group) * sk.h;
        const T* vbh = pv + b * sv.b + (h / v_group) * sv.h;
        for (int64_t i = 0; i < Sq; ++i) {
          double m = ninf;
          for (int64_t j = 0; j < Sk; ++j) {
            double dot = 0;
            for (int64_t d = 0; d < D; ++d)
              dot += static_cast<double>(qbh[i * sq.s + d]) * static_cast<double>(kbh[j * sk.s + d]);
            double x = dot * scale;
            if (causal && j > i) x = ninf;
            if (mask) {
              const int64_t mi = b * mstr[0] + h * mstr[1] + i * mstr[2] + j * mstr[3];
              if (mask->dtype() == DType::kBool)
                x = mask->data<uint8_t>()[mi] ? x : ninf;
              else
                x += static_cast<double>(mask->data<T>()[mi]);
            }
            s[j] = x;
            m = std::max(m, x);
          }
          double sum = 0;
          for (int64_t j = 0; j < Sk; ++j) sum += std::exp(s[j] - m);
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t j = 0; j < Sk; ++j) {
            double p = std::exp(s[j] - m) / sum;
            if (nan_to_zero && std::isnan(p)) p = 0;
            for (int64_t e = 0; e < Dv; ++e) acc[e] += p * static_cast<double>(vbh[j * sv.s + e]);
          }
          T* yrow = py + ((b * H + h) * Sq + i) * Dv;
          for (int64_t e = 0; e < Dv; ++e) yrow[e] = static_cast<T>(acc[e]);
        }
      }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(q.dtype()));
}

}  // namespace

void register_cpu_fused_attention(KernelTable& t) {
  t.add({"FusedAttention", run_fused_attention});
}

}  // namespace kiln::cpu
