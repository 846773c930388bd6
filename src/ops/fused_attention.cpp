// FusedAttention (domain "kiln"): scaled dot-product attention in one node, created by the fuse_attention
// pass.
//   Q [B,Hq,Sq,D], K [Bk,Hk,Sk,D], V [Bv,Hv,Sk,Dv], optional mask broadcastable to [B,H,Sq,Sk]
//   S = scale * Q @ K^T  (+ mask when it is a float tensor; -inf where a bool mask is false; -inf above the
//   diagonal, j > i, when causal=1), P = softmax(S, -1), Y = P @ V  -> [B,H,Sq,Dv] in Q's dtype.
// Attributes: scale (default 1/sqrt(D)), causal (0/1, top-left aligned as torch's is_causal), nan_to_zero
// (0/1: a row whose scores are all -inf gives 0 instead of NaN, as torch's IsNaN/Where guard after Softmax
// does). Batch and head dims broadcast like MatMul's (each of Q, K, V, mask has 1 or the full count) and K/V
// may have fewer heads than Q when they divide it (grouped-query attention: query head h reads kv head h / (H
// / Hk)). Named FusedAttention, not Attention: the op registry is keyed by op type alone and ONNX opset 23
// defines an `Attention` of its own (3-D inputs, KV cache, softcap…) that kiln should be free to add under
// that name.
// Layout attributes q_bshd, k_bshd, v_bshd, y_bshd (0/1, default 0): 1 stores that tensor as [B, S, H, X]
// instead of [B, H, S, X] (the mask keeps [B, H, Sq, Sk]); the fold_attention_layout pass sets them when it
// absorbs the head Transposes (perm [0, 2, 1, 3]) that models put around attention.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

// The output's batch or head dim from those of the inputs that have one: a dim that is not a static 1 wins;
// static values must agree (or, for K/V heads, divide: `divides`).
Result<Dim> merge_dim(const InferContext& ctx, const char* what, const std::vector<Dim>& exact,
                      const std::vector<Dim>& divides) {
  Dim out(1);
  auto take = [&](const Dim& d) {
    if (d.is_static() && d.value() == 1) return;
    if (out.is_static() && out.value() == 1) {
      out = d;
    } else if (!out.same_as(d) && !out.is_static()) {
      out = d.is_static() ? d
                          : Dim::unknown();  // a static count is the better guess; clashes are checked below
    }
  };
  for (const auto& d : exact) take(d);
  if (out.is_static() && out.value() == 1)  // only K/V carry the dim (Q broadcast over it): the largest wins
    for (const auto& d : divides) {
      if (!d.is_static()) {
        out = Dim::unknown();
        break;
      }
      out = Dim(std::max(out.value(), d.value()));
    }
  if (!out.is_static()) return out;
  for (const auto& d : exact)
    if (d.is_static() && d.value() != 1 && d.value() != out.value())
      return ctx.error("{} counts disagree: {} vs {} (each input needs 1 or the same count)", what, d.value(),
                       out.value());
  for (const auto& d : divides)
    if (d.is_static() && (d.value() == 0 ? out.value() != 0 : out.value() % d.value() != 0))
      return ctx.error("K/V {} count {} does not divide the query's {}", what, d.value(), out.value());
  return out;
}

Status infer_fused_attention(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs float Q/K/V, got {}", dtype_name(dt));
  for (size_t i : {1, 2})
    if (ctx.input_dtype(i) != dt)
      return ctx.error("Q is {} but {} is {}; Q, K and V must share a dtype", dtype_name(dt),
                       i == 1 ? "K" : "V", dtype_name(ctx.input_dtype(i)));
  const bool has_mask = ctx.has_input(3);
  if (has_mask && ctx.input_dtype(3) != DType::kBool && ctx.input_dtype(3) != dt)
    return ctx.error("mask must be bool or {} like Q, got {}", dtype_name(dt),
                     dtype_name(ctx.input_dtype(3)));
  const int64_t causal = ctx.node().attr_int("causal", 0), nz = ctx.node().attr_int("nan_to_zero", 0);
  if ((causal != 0 && causal != 1) || (nz != 0 && nz != 1))
    return ctx.error("causal and nan_to_zero must be 0 or 1, got {} and {}", causal, nz);
  bool bshd[4];
  const char* const kLayoutAttrs[4] = {"q_bshd", "k_bshd", "v_bshd", "y_bshd"};
  for (int i = 0; i < 4; ++i) {
    const int64_t a = ctx.node().attr_int(kLayoutAttrs[i], 0);
    if (a != 0 && a != 1) return ctx.error("{} must be 0 or 1, got {}", kLayoutAttrs[i], a);
    bshd[i] = a != 0;
  }
  const Shape &q_in = ctx.input_shape(0), &k_in = ctx.input_shape(1), &v_in = ctx.input_shape(2);
  for (const Shape* s : {&q_in, &k_in, &v_in})
    if (s->has_rank() && s->rank() != 4)
      return ctx.error(
          "Q, K and V must be 4-D [batch, heads, seq, head_dim] (or [batch, seq, heads, "
          "head_dim] with *_bshd=1); got {}, {} and {}",
          q_in.to_string(), k_in.to_string(), v_in.to_string());
  if (!q_in.has_rank() || !k_in.has_rank() || !v_in.has_rank()) {
    ctx.set_output(0, dt, Shape(std::vector<Dim>(4, Dim::unknown())));
    return Status();
  }
  // Everything below reasons in the logical [B, H, S, X] order.
  auto logical = [](const Shape& s, bool swap) {
    return swap ? Shape(std::vector<Dim>{s[0], s[2], s[1], s[3]}) : s;
  };
  const Shape q = logical(q_in, bshd[0]), k = logical(k_in, bshd[1]), v = logical(v_in, bshd[2]);
  auto mismatch = [](const Dim& a, const Dim& b) {
    return a.is_static() && b.is_static() && a.value() != b.value();
  };
  if (mismatch(q[3], k[3]))
    return ctx.error("Q {} and K {} have different head dims", q.to_string(), k.to_string());
  if (mismatch(k[2], v[2]))
    return ctx.error("K {} and V {} have different sequence lengths", k.to_string(), v.to_string());
  Shape m = has_mask ? ctx.input_shape(3) : Shape(std::vector<Dim>{});
  if (m.has_rank() && m.rank() > 4) return ctx.error("mask {} has more than 4 dims", m.to_string());
  // The mask's dims right-aligned to [B, H, Sq, Sk]; absent leading dims broadcast.
  auto mdim = [&](size_t axis) -> Dim {
    if (!m.has_rank()) return Dim::unknown();
    const size_t off = 4 - m.rank();
    return axis < off ? Dim(1) : m[axis - off];
  };
  for (size_t axis : {2, 3}) {
    const Dim want = axis == 2 ? q[2] : k[2];
    const Dim got = mdim(axis);
    if (got.is_static() && got.value() != 1 && mismatch(got, want))
      return ctx.error("mask {} does not broadcast to the scores [.., {}, {}]", m.to_string(),
                       q[2].to_string(), k[2].to_string());
  }
  KILN_ASSIGN_OR_RETURN(Dim batch, merge_dim(ctx, "batch", {q[0], k[0], v[0], mdim(0)}, {}));
  KILN_ASSIGN_OR_RETURN(Dim heads, merge_dim(ctx, "head", {q[1], mdim(1)}, {k[1], v[1]}));
  ctx.set_output(0, dt,
                 Shape(bshd[3] ? std::vector<Dim>{batch, q[2], heads, v[3]}
                               : std::vector<Dim>{batch, heads, q[2], v[3]}));
  return Status();
}

}  // namespace

void register_fused_attention(OpRegistry& r) {
  r.add({"FusedAttention", 3, 4, 1, 1, infer_fused_attention, kKilnDomain});
}

}  // namespace kiln::ops
