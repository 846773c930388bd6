// FusedAttention reference: the unfused math written out (scores = scale * Q K^T, mask, softmax over keys, P
// V), accumulated in double, one query row at a time so no [Sq, Sk] matrix is kept. Special cases follow the
// unfused graph: a row whose scores are all -inf gives NaN (softmax of -inf - -inf), or 0 with nan_to_zero
// (there any NaN probability becomes 0, as torch's IsNaN/Where guard does); Sk == 0 gives zeros (an empty
// sum). Q, K, V and Y may each be stored [B, S, H, X] (the op's *_bshd attributes): rows are addressed
// through per-operand strides; packed=1 reads all three from one [B, S, W] tensor at their row offsets.
#include <cmath>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "ops/fused_attention.h"

namespace kiln::cpu {

namespace {

// A [B, H, S, X] operand stored as such or (bshd) as [B, S, H, X]: its logical head/seq counts and the
// element strides of batch, head and row, 0 on broadcast (size-1) batch/head dims.
struct Operand {
  int64_t heads = 0, seq = 0, x = 0;
  int64_t b = 0, h = 0, s = 0;
};
Operand operand(const Tensor& t, bool bshd) {
  const auto& d = t.dims();
  Operand o;
  o.heads = bshd ? d[2] : d[1];
  o.seq = bshd ? d[1] : d[2];
  o.x = d[3];
  o.s = bshd ? o.heads * o.x : o.x;
  o.h = o.heads == 1 ? 0 : bshd ? o.x : o.seq * o.x;
  o.b = d[0] == 1 ? 0 : o.heads * o.seq * o.x;
  return o;
}

// One of Q/K/V inside packed rows of [B, S, W]: `heads` x `x` values from the row's element `offset` on.
Operand packed_operand(const Tensor& t, int64_t heads, int64_t x) {
  Operand o;
  o.heads = heads;
  o.seq = t.dim(1);
  o.x = x;
  o.s = t.dim(2);
  o.h = heads == 1 ? 0 : x;
  o.b = t.dim(0) == 1 ? 0 : o.seq * o.s;
  return o;
}

Status run_fused_attention(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  const std::optional<ops::PackedQkv> packed = ops::packed_qkv(node);
  const Tensor& q = ctx.input(0);
  const Tensor& k = packed ? q : ctx.input(1);
  const Tensor& v = packed ? q : ctx.input(2);
  Tensor& y = ctx.output(0);
  const Operand sq = packed ? packed_operand(q, packed->q_heads, packed->head_size)
                            : operand(q, node.attr_int("q_bshd", 0) != 0),
                sk = packed ? packed_operand(q, packed->kv_heads, packed->head_size)
                            : operand(k, node.attr_int("k_bshd", 0) != 0),
                sv = packed ? packed_operand(q, packed->kv_heads, packed->head_size)
                            : operand(v, node.attr_int("v_bshd", 0) != 0),
                sy = operand(y, node.attr_int("y_bshd", 0) != 0);
  const int64_t q_off = packed ? packed->q_off : 0, k_off = packed ? packed->k_off : 0,
                v_off = packed ? packed->v_off : 0;
  const int64_t B = y.dim(0), H = sy.heads, Sq = sq.seq, D = sq.x, Sk = sk.seq, Dv = sv.x;
  const int64_t Hk = sk.heads, Hv = sv.heads;
  const double scale = ctx.node().has_attr("scale") ? static_cast<double>(ctx.node().attr_float("scale", 1.f))
                                                    : 1.0 / std::sqrt(static_cast<double>(D > 0 ? D : 1));
  const bool causal = ctx.node().attr_int("causal", 0) != 0;
  const bool nan_to_zero = ctx.node().attr_int("nan_to_zero", 0) != 0;
  if (y.numel() == 0) return Status();
  const Tensor* mask = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  std::vector<int64_t> mstr;
  if (mask) mstr = broadcast_strides(mask->dims(), {B, H, Sq, Sk});
  const int64_t k_group = Hk > 0 ? H / Hk : 1, v_group = Hv > 0 ? H / Hv : 1;
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<double> s(static_cast<size_t>(Sk)), acc(static_cast<size_t>(Dv));
  bool ok = dispatch_float(q.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *pq = q.data<T>() + q_off, *pk = k.data<T>() + k_off, *pv = v.data<T>() + v_off;
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
          T* yrow = py + b * sy.b + h * sy.h + i * sy.s;
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
