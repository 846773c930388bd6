// Attention (ONNX opset 23) reference: the op's math written out in double, one query row at a time (see
// src/ops/attention.cpp for the semantics and the spec history it follows). Every operand is read into
// doubles first, so Q/K and V may have different float dtypes and any numeric mask works as an additive bias.
// The present caches are built first (past rows, then this step's K/V rows) and the scores read keys from
// them, which is what the spec's Concat does. softmax_precision only bounds the precision from below: the
// softmax runs in double whatever it says. A row whose biased scores are all -inf gives NaN (softmax of
// -inf - -inf), as the spec's Softmax does; T == 0 keys gives Y = 0 (an empty sum).
#include <cmath>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "ops/attention.h"

namespace kiln::cpu {

namespace {

using ops::kAttnK;
using ops::kAttnMask;
using ops::kAttnPastKey;
using ops::kAttnPastValue;
using ops::kAttnPresentKey;
using ops::kAttnPresentValue;
using ops::kAttnQ;
using ops::kAttnQkOutput;
using ops::kAttnV;
using ops::kAttnY;

std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = t.get_as_double(i);
  return out;
}

bool store(Tensor& t, const std::vector<double>& values) {
  return dispatch_float(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
}

Status run_attention(KernelContext& ctx) {
  const Tensor &q = ctx.input(kAttnQ), &k = ctx.input(kAttnK), &v = ctx.input(kAttnV);
  const ir::Node& node = ctx.node();
  const bool three_d = q.rank() == 3;
  int64_t Hq, Sq, D, Hk, Skv, Dv;
  const int64_t B = q.dim(0);
  if (three_d) {
    Hq = node.attr_int("q_num_heads", 1);
    Hk = node.attr_int("kv_num_heads", 1);
    Sq = q.dim(1);
    D = q.dim(2) / Hq;
    Skv = k.dim(1);
    Dv = v.dim(2) / Hk;
  } else {
    Hq = q.dim(1);
    Sq = q.dim(2);
    D = q.dim(3);
    Hk = k.dim(1);
    Skv = k.dim(2);
    Dv = v.dim(3);
  }
  const Tensor* past_k = ctx.has_input(kAttnPastKey) ? &ctx.input(kAttnPastKey) : nullptr;
  const Tensor* past_v = ctx.has_input(kAttnPastValue) ? &ctx.input(kAttnPastValue) : nullptr;
  const int64_t P = past_k ? past_k->dim(2) : 0, T = P + Skv;

  // Element offset of row (b, h, s) of a [B, H, S, X] tensor, or of a 3-D [B, S, H*X] one.
  auto row = [three_d](int64_t b, int64_t h, int64_t s, int64_t H, int64_t S, int64_t X) {
    return three_d ? (b * S + s) * H * X + h * X : ((b * H + h) * S + s) * X;
  };

  // The present caches [B, Hk, T, X]: P past rows, then the Skv new ones.
  const std::vector<double> qd = as_doubles(q), kd = as_doubles(k), vd = as_doubles(v);
  std::vector<double> keys(static_cast<size_t>(B * Hk * T * D)), vals(static_cast<size_t>(B * Hk * T * Dv));
  {
    const std::vector<double> pkd = past_k ? as_doubles(*past_k) : std::vector<double>{};
    const std::vector<double> pvd = past_v ? as_doubles(*past_v) : std::vector<double>{};
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hk; ++h)
        for (int64_t t = 0; t < T; ++t) {
          double* kr = keys.data() + ((b * Hk + h) * T + t) * D;
          double* vr = vals.data() + ((b * Hk + h) * T + t) * Dv;
          const bool past = t < P;
          const double* ks =
              past ? pkd.data() + ((b * Hk + h) * P + t) * D : kd.data() + row(b, h, t - P, Hk, Skv, D);
          const double* vs =
              past ? pvd.data() + ((b * Hk + h) * P + t) * Dv : vd.data() + row(b, h, t - P, Hk, Skv, Dv);
          std::copy(ks, ks + D, kr);
          std::copy(vs, vs + Dv, vr);
        }
  }

  const double scale = node.has_attr("scale") ? static_cast<double>(node.attr_float("scale", 1.f))
                                              : 1.0 / std::sqrt(static_cast<double>(D > 0 ? D : 1));
  const double softcap = node.attr_float("softcap", 0.f);
  const bool causal = node.attr_int("is_causal", 0) != 0;
  const int64_t mode = node.attr_int("qk_matmul_output_mode", 0);
  const double ninf = -std::numeric_limits<double>::infinity();

  const Tensor* mask = ctx.has_input(kAttnMask) ? &ctx.input(kAttnMask) : nullptr;
  std::vector<int64_t> mstr;
  std::vector<double> mask_values;
  if (mask) {
    mstr = broadcast_strides(mask->dims(), {B, Hq, Sq, T});
    mask_values = as_doubles(*mask);
    if (mask->dtype() == DType::kBool)
      for (double& m : mask_values) m = m != 0 ? 0.0 : ninf;
  }

  const bool want_qk = ctx.has_output(kAttnQkOutput);
  std::vector<double> y(static_cast<size_t>(B * Hq * Sq * Dv)),
      qk(want_qk ? static_cast<size_t>(B * Hq * Sq * T) : 0);
  std::vector<double> raw(static_cast<size_t>(T)), capped(static_cast<size_t>(T)),
      biased(static_cast<size_t>(T)), prob(static_cast<size_t>(T));
  const int64_t group = Hk > 0 ? Hq / Hk : 1;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t kvh = h / group;
      for (int64_t i = 0; i < Sq; ++i) {
        const double* qr = qd.data() + row(b, h, i, Hq, Sq, D);
        double m = ninf;
        for (int64_t j = 0; j < T; ++j) {
          const double* kr = keys.data() + ((b * Hk + kvh) * T + j) * D;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += qr[d] * kr[d];
          raw[j] = dot * scale;
          capped[j] = softcap != 0 ? softcap * std::tanh(raw[j] / softcap) : raw[j];
          double bias = 0;
          if (mask) bias += mask_values[b * mstr[0] + h * mstr[1] + i * mstr[2] + j * mstr[3]];
          // Causal with a past: query i sits at position P + i of the total sequence, so it sees keys
          // j <= i + P (the onnx reference and the amended spec; top-left when P == 0).
          if (causal && j > i + P) bias = ninf;
          biased[j] = capped[j] + bias;
          m = std::max(m, biased[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) sum += std::exp(biased[j] - m);
        for (int64_t j = 0; j < T; ++j) prob[j] = std::exp(biased[j] - m) / sum;
        double* yr = y.data() + row(b, h, i, Hq, Sq, Dv);
        for (int64_t j = 0; j < T; ++j) {
          const double* vr = vals.data() + ((b * Hk + kvh) * T + j) * Dv;
          for (int64_t e = 0; e < Dv; ++e) yr[e] += prob[j] * vr[e];
        }
        if (want_qk) {
          const std::vector<double>& src = mode == 0 ? raw : mode == 1 ? capped : mode == 2 ? biased : prob;
          std::copy(src.begin(), src.end(), qk.begin() + ((b * Hq + h) * Sq + i) * T);
        }
      }
    }

  bool ok = store(ctx.output(kAttnY), y);
  if (ctx.has_output(kAttnPresentKey)) ok &= store(ctx.output(kAttnPresentKey), keys);
  if (ctx.has_output(kAttnPresentValue)) ok &= store(ctx.output(kAttnPresentValue), vals);
  if (want_qk) ok &= store(ctx.output(kAttnQkOutput), qk);
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(q.dtype()));
}

}  // namespace

void register_cpu_attention(KernelTable& t) {
  t.add({"Attention", run_attention});
}

}  // namespace kiln::cpu
