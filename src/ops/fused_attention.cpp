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
// packed (0/1, default 0): 1 takes Q, K and V from one [B, S, W] input 0, side by side in each row as one QKV
// projection writes them (inputs 1 and 2 empty); q_num_heads, kv_num_heads, head_size and qkv_offsets (3
// element offsets into a row) place them, each then read as [B, S, H, head_size] (see fused_attention.h). The
// pack_qkv pass sets it, so separate Q/K/V projections become one GEMM and GPT-2's Split goes away.
#include "ops/fused_attention.h"

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

int64_t PackedQkv::row_needed() const {
  return std::max({q_off + q_heads * head_size, k_off + kv_heads * head_size, v_off + kv_heads * head_size});
}

std::optional<PackedQkv> packed_qkv(const ir::Node& n) {
  if (n.attr_int("packed", 0) == 0) return std::nullopt;
  PackedQkv p;
  p.q_heads = n.attr_int("q_num_heads", 0);
  p.kv_heads = n.attr_int("kv_num_heads", p.q_heads);
  p.head_size = n.attr_int("head_size", 0);
  const std::vector<int64_t> off = n.attr_ints("qkv_offsets");
  if (off.size() == 3) {
    p.q_off = off[0];
    p.k_off = off[1];
    p.v_off = off[2];
  }
  return p;
}

AttentionOperands attention_operands(const ir::Node& n, const Shape& in0, const Shape& in1, const Shape& in2) {
  AttentionOperands o;
  if (auto p = packed_qkv(n)) {
    o.q_bshd = o.k_bshd = o.v_bshd = true;
    if (!in0.has_rank() || in0.rank() != 3) return o;
    o.q = Shape(std::vector<Dim>{in0[0], in0[1], Dim(p->q_heads), Dim(p->head_size)});
    o.k = Shape(std::vector<Dim>{in0[0], in0[1], Dim(p->kv_heads), Dim(p->head_size)});
    o.v = o.k;
    return o;
  }
  o.q = in0;
  o.k = in1;
  o.v = in2;
  o.q_bshd = n.attr_int("q_bshd", 0) != 0;
  o.k_bshd = n.attr_int("k_bshd", 0) != 0;
  o.v_bshd = n.attr_int("v_bshd", 0) != 0;
  return o;
}

namespace {

// packed=1's attributes: head counts and size positive, the query's heads a multiple of K/V's, offsets in the
// row; input 0 a 3-D [B, S, W] with W (when static) holding every operand.
Status check_packed(const InferContext& ctx, const PackedQkv& p) {
  const ir::Node& n = ctx.node();
  if (n.attr_ints("qkv_offsets").size() != 3)
    return ctx.error("packed=1 needs qkv_offsets with 3 values (Q, K, V), got {}", n.attr_ints("qkv_offsets").size());
  if (p.q_heads <= 0 || p.kv_heads <= 0 || p.head_size <= 0 || p.q_heads % p.kv_heads != 0)
    return ctx.error("packed=1 needs q_num_heads and kv_num_heads > 0 (kv dividing q) and head_size > 0, got {}, {}, {}",
                     p.q_heads, p.kv_heads, p.head_size);
  if (p.q_off < 0 || p.k_off < 0 || p.v_off < 0)
    return ctx.error("qkv_offsets must be >= 0, got [{}, {}, {}]", p.q_off, p.k_off, p.v_off);
  if (ctx.has_input(1) || ctx.has_input(2)) return ctx.error("packed=1 takes Q, K and V from input 0; inputs 1 and 2 must be empty");
  const Shape& s = ctx.input_shape(0);
  if (s.has_rank() && s.rank() != 3)
    return ctx.error("packed=1 needs a 3-D [batch, seq, width] input 0, got {}", s.to_string());
  if (s.has_rank() && s[2].is_static() && s[2].value() < p.row_needed())
    return ctx.error("packed QKV rows hold {} values but Q/K/V at offsets [{}, {}, {}] need {}", s[2].value(), p.q_off,
                     p.k_off, p.v_off, p.row_needed());
  return Status();
}

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
  const std::optional<PackedQkv> packed = packed_qkv(ctx.node());
  if (packed) {
    KILN_RETURN_IF_ERROR(check_packed(ctx, *packed));
  } else {
    for (size_t i : {1, 2}) {
      if (!ctx.has_input(i)) return ctx.error("{} is missing (only packed=1 leaves it empty)", i == 1 ? "K" : "V");
      if (ctx.input_dtype(i) != dt)
        return ctx.error("Q is {} but {} is {}; Q, K and V must share a dtype", dtype_name(dt),
                         i == 1 ? "K" : "V", dtype_name(ctx.input_dtype(i)));
    }
  }
  const bool has_mask = ctx.has_input(3);
  if (has_mask && ctx.input_dtype(3) != DType::kBool && ctx.input_dtype(3) != dt)
    return ctx.error("mask must be bool or {} like Q, got {}", dtype_name(dt),
                     dtype_name(ctx.input_dtype(3)));
  const int64_t causal = ctx.node().attr_int("causal", 0), nz = ctx.node().attr_int("nan_to_zero", 0);
  if ((causal != 0 && causal != 1) || (nz != 0 && nz != 1))
    return ctx.error("causal and nan_to_zero must be 0 or 1, got {} and {}", causal, nz);
  const char* const kLayoutAttrs[4] = {"q_bshd", "k_bshd", "v_bshd", "y_bshd"};
  for (int i = 0; i < 4; ++i) {
    const int64_t a = ctx.node().attr_int(kLayoutAttrs[i], 0);
    if (a != 0 && a != 1) return ctx.error("{} must be 0 or 1, got {}", kLayoutAttrs[i], a);
  }
  const Shape none;
  const AttentionOperands ops = attention_operands(ctx.node(), ctx.input_shape(0),
                                                   packed ? none : ctx.input_shape(1),
                                                   packed ? none : ctx.input_shape(2));
  const bool bshd[4] = {ops.q_bshd, ops.k_bshd, ops.v_bshd, ctx.node().attr_int("y_bshd", 0) != 0};
  const Shape &q_in = ops.q, &k_in = ops.k, &v_in = ops.v;
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
  r.add({"FusedAttention", 1, 4, 1, 1, infer_fused_attention, kKilnDomain});  // packed=1 needs input 0 only
}

}  // namespace kiln::ops
