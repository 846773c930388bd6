// Attention (ONNX opset 23, default domain): scaled dot-product attention with an optional mask, KV cache,
// grouped-query heads, softcap and a debug output of the scores. torch 2.11's exporter writes it for
// F.scaled_dot_product_attention at opset 23.
//   Q [B, Hq, Sq, D]  K [B, Hkv, Skv, D]  V [B, Hkv, Skv, Dv]   (or 3-D [B, S, H*X] with q_num_heads /
//   kv_num_heads), optional attn_mask broadcastable to [B, Hq, Sq, T], past_key [B, Hkv, P, D] and
//   past_value [B, Hkv, P, Dv] (T = P + Skv: the past is concatenated before K/V on the sequence axis).
//   Outputs: Y [B, Hq, Sq, Dv] (3-D: [B, Sq, Hq*Dv]) in Q's dtype; present_key [B, Hkv, T, D] and
//   present_value [B, Hkv, T, Dv] (the concatenated caches, also without a past); qk_matmul_output
//   [B, Hq, Sq, T] in Q's dtype.
// Math (the spec's function body as amended upstream, which onnx's reference implementation follows):
//   S = scale * Q K^T  (default scale 1/sqrt(D)); S' = softcap * tanh(S / softcap) when softcap != 0;
//   bias = mask (bool: 0 where true, -inf where false; numeric: added) + causal (-inf where j > i + P);
//   P = softmax(S' + bias); Y = P V; query head h reads KV head h / (Hq / Hkv).
//   qk_matmul_output_mode: 0 = S, 1 = S' (softcap, no mask), 2 = S' + bias, 3 = P.
// Spec history this follows (onnx 1.18/1.19 wrote it otherwise): softcap comes before the mask (after it, a
// -inf mask would become -softcap and leak probability), modes 1 and 2 are numbered as above, and is_causal
// with a past is offset by P (bottom-right: a new query attends every past key) rather than top-left.
// The 4-D form ignores q_num_heads/kv_num_heads (the spec ties them to 3-D inputs). nonpad_kv_seqlen is an
// opset-24 input and is rejected here, as is any opset below 23.
#include "ops/attention.h"

#include <cmath>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

bool clash(const Dim& a, const Dim& b) {
  return a.is_static() && b.is_static() && a.value() != b.value();
}
// The better-known of two dims that must agree.
Dim pick(const Dim& a, const Dim& b) {
  return a.is_static() || !b.is_static() ? a : b;
}

// hidden / heads for 3-D inputs; a static hidden size must divide.
Result<Dim> per_head(const InferContext& ctx, const char* what, const Shape& s, int64_t heads,
                     const char* heads_attr) {
  const Dim& hidden = s[2];
  if (!hidden.is_static()) return Dim::unknown();
  if (hidden.value() % heads != 0)
    return ctx.error("{} {} has hidden size {}, not a multiple of {}={}", what, s.to_string(), hidden.value(),
                     heads_attr, heads);
  return Dim(hidden.value() / heads);
}

}  // namespace

Result<AttentionDims> attention_dims(const InferContext& ctx) {
  const Shape &q = ctx.input_shape(kAttnQ), &k = ctx.input_shape(kAttnK), &v = ctx.input_shape(kAttnV);
  if (q.rank() != k.rank() || q.rank() != v.rank() || (q.rank() != 3 && q.rank() != 4))
    return ctx.error(
        "Q, K and V must all be 4-D [batch, heads, seq, head_size] or all 3-D [batch, seq, heads*head_size]; "
        "got Q {}, K {}, V {}",
        q.to_string(), k.to_string(), v.to_string());
  AttentionDims d;
  d.three_d = q.rank() == 3;
  Dim k_head;
  if (d.three_d) {
    const ir::Node& n = ctx.node();
    if (!n.has_attr("q_num_heads") || !n.has_attr("kv_num_heads"))
      return ctx.error("3-D Q/K/V (Q {}) need the q_num_heads and kv_num_heads attributes to split the heads",
                       q.to_string());
    const int64_t hq = n.attr_int("q_num_heads", 0), hkv = n.attr_int("kv_num_heads", 0);
    d.q_heads = Dim(hq);
    d.kv_heads = Dim(hkv);
    d.q_seq = q[1];
    if (clash(k[1], v[1]))
      return ctx.error("K {} and V {} have different sequence lengths", k.to_string(), v.to_string());
    d.kv_seq = pick(k[1], v[1]);
    KILN_ASSIGN_OR_RETURN(d.head, per_head(ctx, "Q", q, hq, "q_num_heads"));
    KILN_ASSIGN_OR_RETURN(k_head, per_head(ctx, "K", k, hkv, "kv_num_heads"));
    KILN_ASSIGN_OR_RETURN(d.v_head, per_head(ctx, "V", v, hkv, "kv_num_heads"));
  } else {
    d.q_heads = q[1];
    d.q_seq = q[2];
    d.head = q[3];
    if (clash(k[1], v[1]))
      return ctx.error("K {} and V {} have different head counts", k.to_string(), v.to_string());
    d.kv_heads = pick(k[1], v[1]);
    if (clash(k[2], v[2]))
      return ctx.error("K {} and V {} have different sequence lengths", k.to_string(), v.to_string());
    d.kv_seq = pick(k[2], v[2]);
    k_head = k[3];
    d.v_head = v[3];
  }
  if (clash(d.head, k_head))
    return ctx.error("Q {} and K {} have different head sizes ({} vs {})", q.to_string(), k.to_string(),
                     d.head.to_string(), k_head.to_string());
  d.head = pick(d.head, k_head);
  if (clash(q[0], k[0]) || clash(q[0], v[0]))
    return ctx.error("Q {}, K {} and V {} have different batch sizes", q.to_string(), k.to_string(),
                     v.to_string());
  d.batch = pick(pick(q[0], k[0]), v[0]);
  if (d.q_heads.is_static() && d.kv_heads.is_static() &&
      (d.kv_heads.value() == 0 ? d.q_heads.value() != 0 : d.q_heads.value() % d.kv_heads.value() != 0))
    return ctx.error(
        "{} query heads cannot share {} key/value heads (grouped-query attention needs the KV head "
        "count to divide the query head count); Q {}, K {}",
        d.q_heads.value(), d.kv_heads.value(), q.to_string(), k.to_string());

  const bool has_pk = ctx.has_input(kAttnPastKey), has_pv = ctx.has_input(kAttnPastValue);
  if (has_pk != has_pv)
    return ctx.error("past_key and past_value must be given together (the model gives only {})",
                     has_pk ? "past_key" : "past_value");
  d.past_seq = Dim(0);
  if (has_pk) {
    const Shape &pk = ctx.input_shape(kAttnPastKey), &pv = ctx.input_shape(kAttnPastValue);
    d.past_seq = Dim::unknown();
    for (const Shape* p : {&pk, &pv})
      if (p->has_rank() && p->rank() != 4)
        return ctx.error("past_key {} and past_value {} must be 4-D [batch, kv_heads, past_seq, head_size]",
                         pk.to_string(), pv.to_string());
    if (pk.has_rank() && pv.has_rank()) {
      const bool bad = clash(pk[0], d.batch) || clash(pv[0], d.batch) || clash(pk[1], d.kv_heads) ||
                       clash(pv[1], d.kv_heads) || clash(pk[3], d.head) || clash(pv[3], d.v_head) ||
                       clash(pk[2], pv[2]);
      if (bad)
        return ctx.error(
            "past_key {} and past_value {} do not match [batch={}, kv_heads={}, past_seq, head_size={} / "
            "v_head_size={}] (from Q {}, K {}, V {})",
            pk.to_string(), pv.to_string(), d.batch.to_string(), d.kv_heads.to_string(), d.head.to_string(),
            d.v_head.to_string(), q.to_string(), k.to_string(), v.to_string());
      d.past_seq = pick(pk[2], pv[2]);
      d.batch = pick(d.batch, pick(pk[0], pv[0]));
      d.kv_heads = pick(d.kv_heads, pick(pk[1], pv[1]));
      d.head = pick(d.head, pk[3]);
      d.v_head = pick(d.v_head, pv[3]);
    }
  }
  KILN_ASSIGN_OR_RETURN(d.total_seq, ctx.add_dims(d.past_seq, d.kv_seq));
  return d;
}

namespace {

Status check_attributes(const InferContext& ctx) {
  const ir::Node& n = ctx.node();
  const int64_t causal = n.attr_int("is_causal", 0), mode = n.attr_int("qk_matmul_output_mode", 0);
  if (causal != 0 && causal != 1) return ctx.error("is_causal must be 0 or 1, got {}", causal);
  if (mode < 0 || mode > 3) return ctx.error("qk_matmul_output_mode must be 0, 1, 2 or 3, got {}", mode);
  if (n.has_attr("scale")) {
    const float s = n.attr_float("scale", 1.f);
    // The spec multiplies Q and K by sqrt(scale) each, which has no value for scale <= 0.
    if (!(s > 0) || !std::isfinite(s)) return ctx.error("scale must be a finite value > 0, got {}", s);
  }
  const float softcap = n.attr_float("softcap", 0.f);
  if (!std::isfinite(softcap)) return ctx.error("softcap must be finite, got {}", softcap);
  if (n.has_attr("softmax_precision")) {
    const int64_t p = n.attr_int("softmax_precision", 1);
    auto pdt = dtype_from_onnx(static_cast<int32_t>(p));
    if (!pdt || !is_float(*pdt))
      return ctx.error("softmax_precision must be a float type (1 f32, 10 f16, 11 f64, 16 bf16), got {}", p);
  }
  for (const char* a : {"q_num_heads", "kv_num_heads"})
    if (n.has_attr(a) && n.attr_int(a, 0) <= 0)
      return ctx.error("{} must be > 0, got {}", a, n.attr_int(a, 0));
  return Status();
}

Status infer_attention(InferContext& ctx) {
  if (ctx.opset() < 23)
    return ctx.error(
        "Attention is an opset-23 op but the model imports opset {}; export with opset_version>=23",
        ctx.opset());
  if (ctx.has_input(kAttnNonpadKvSeqlen))
    return ctx.unsupported("input 6 (nonpad_kv_seqlen) is an opset-24 input; kiln reads opsets up to 23");
  const DType dt = ctx.input_dtype(kAttnQ), vdt = ctx.input_dtype(kAttnV);
  if (!is_float(dt)) return ctx.error("needs float Q, got {}", dtype_name(dt));
  if (ctx.input_dtype(kAttnK) != dt)
    return ctx.error("Q is {} but K is {}; Q and K must share a dtype", dtype_name(dt),
                     dtype_name(ctx.input_dtype(kAttnK)));
  if (!is_float(vdt)) return ctx.error("needs float V, got {}", dtype_name(vdt));
  if (ctx.has_input(kAttnPastKey) && ctx.input_dtype(kAttnPastKey) != dt)
    return ctx.error("past_key is {} but K is {}; they must share a dtype",
                     dtype_name(ctx.input_dtype(kAttnPastKey)), dtype_name(dt));
  if (ctx.has_input(kAttnPastValue) && ctx.input_dtype(kAttnPastValue) != vdt)
    return ctx.error("past_value is {} but V is {}; they must share a dtype",
                     dtype_name(ctx.input_dtype(kAttnPastValue)), dtype_name(vdt));
  const bool has_mask = ctx.has_input(kAttnMask);
  if (has_mask) {
    const DType mdt = ctx.input_dtype(kAttnMask);
    if (mdt != DType::kBool && !is_float(mdt) && !is_integer(mdt))
      return ctx.error("attn_mask must be bool or numeric, got {}", dtype_name(mdt));
  }
  KILN_RETURN_IF_ERROR(check_attributes(ctx));

  const Shape &q = ctx.input_shape(kAttnQ), &k = ctx.input_shape(kAttnK), &v = ctx.input_shape(kAttnV);
  if (!q.has_rank() || !k.has_rank() || !v.has_rank()) {
    const Shape four(std::vector<Dim>(4, Dim::unknown()));
    ctx.set_output(kAttnY, dt, Shape::unknown_rank());
    ctx.set_output(kAttnPresentKey, dt, four);
    ctx.set_output(kAttnPresentValue, vdt, four);
    ctx.set_output(kAttnQkOutput, dt, four);
    return Status();
  }
  KILN_ASSIGN_OR_RETURN(AttentionDims d, attention_dims(ctx));

  if (has_mask) {
    const Shape& m = ctx.input_shape(kAttnMask);
    const Dim target[4] = {d.batch, d.q_heads, d.q_seq, d.total_seq};
    bool ok = !m.has_rank() || m.rank() <= 4;
    for (size_t i = 0; ok && m.has_rank() && i < m.rank(); ++i) {
      const Dim& md = m[m.rank() - 1 - i];
      ok = !(md.is_static() && md.value() != 1 && clash(md, target[3 - i]));
    }
    if (!ok)
      return ctx.error(
          "attn_mask {} does not broadcast to the scores [batch, q_heads, q_seq, total_seq] = {}",
          m.to_string(), Shape(std::vector<Dim>(target, target + 4)).to_string());
  }

  KILN_ASSIGN_OR_RETURN(Dim y_width, ctx.mul_dims(d.q_heads, d.v_head));
  ctx.set_output(kAttnY, dt,
                 d.three_d ? Shape(std::vector<Dim>{d.batch, d.q_seq, y_width})
                           : Shape(std::vector<Dim>{d.batch, d.q_heads, d.q_seq, d.v_head}));
  ctx.set_output(kAttnPresentKey, dt, Shape(std::vector<Dim>{d.batch, d.kv_heads, d.total_seq, d.head}));
  ctx.set_output(kAttnPresentValue, vdt, Shape(std::vector<Dim>{d.batch, d.kv_heads, d.total_seq, d.v_head}));
  ctx.set_output(kAttnQkOutput, dt, Shape(std::vector<Dim>{d.batch, d.q_heads, d.q_seq, d.total_seq}));
  return Status();
}

}  // namespace

void register_attention(OpRegistry& r) {
  r.add({"Attention", 3, 7, 1, 4, infer_attention});
}

}  // namespace kiln::ops
