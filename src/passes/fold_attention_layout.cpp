// fold_attention_layout: the head Transposes around attention become FusedAttention layout attributes.
//
// Models keep activations as [B, S, H*D] and split heads with Reshape([B, S, H, D]) -> Transpose(perm
// [0, 2, 1, 3]) for Q, K and V, then undo it after attention with Transpose(perm [0, 2, 1, 3]) ->
// Reshape([B, S, H*D]) (BERT and GPT-2 as torch exports them: four Transposes a layer, each a full copy of
// the activation). FusedAttention reads and writes any operand as [B, S, H, X] when its q_bshd / k_bshd /
// v_bshd / y_bshd attribute is 1 (the kernels only change a row stride), so such a Transpose goes away:
//   - a producer Transpose(perm [0, 2, 1, 3]) of Q, K or V whose output has no other reader (and is not a
//     graph output): the node reads the Transpose's input and sets the attribute;
//   - a sole consumer Transpose(perm [0, 2, 1, 3]) of Y (Y not a graph output): the node writes the
//     Transpose's output and sets y_bshd.
// nn.MultiheadAttention's seq-first form (ViT: Transposes [1,0,2] around a packed in-projection, 5-D
// head-split Transposes, Y merged with perm [2,0,1,3]) is not a head swap; it is rewritten whole, see
// fold_multihead_attention below. Dead code goes first, so readers that fuse_attention orphaned (the Shape
// that fed torch's K^T reshape) do not count as other readers. Runs right after fuse_attention.
#include <array>
#include <cstring>
#include <set>

#include "ops/op.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"
#include "util/error.h"

namespace kiln::passes {

namespace {

bool is_head_transpose(const ir::Node& n) {
  return n.op_type == "Transpose" && n.domain.empty() && n.inputs.size() == 1 && n.outputs.size() == 1 &&
         n.attr_ints("perm") == std::vector<int64_t>{0, 2, 1, 3};
}

// Every read of a value: node inputs (subgraph bodies too, which may read outer names) and graph outputs.
void count_reads(const ir::Graph& g, std::map<std::string, int>& uses) {
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs)
      if (!in.empty()) ++uses[in];
    for (const auto& [key, a] : n.attrs)
      if (a.g) count_reads(*a.g, uses);
  }
  for (const auto& o : g.outputs) ++uses[o];
}

// The inferred output agrees with what the graph had: same dtype and rank, no two static dims that differ.
bool fits(const ir::ValueInfo& got, const ir::ValueInfo& want) {
  if (got.dtype != want.dtype) return false;
  if (!want.shape.has_rank()) return true;
  if (!got.shape.has_rank() || got.shape.rank() != want.shape.rank()) return false;
  for (size_t i = 0; i < want.shape.rank(); ++i) {
    const Dim &a = got.shape[i], &b = want.shape[i];
    if (a.is_static() && b.is_static() && a.value() != b.value()) return false;
  }
  return true;
}

// ---- nn.MultiheadAttention (torch's batch_first form, as ViT exports it) ----
//
// torch runs MultiheadAttention sequence-first, so a batch_first model brackets every attention block with
// Transposes and splits heads through a seq-first chain (E = H*D, N = 3E, B may be symbolic):
//   X [B,S,E] -Transpose[1,0,2]-> [S,B,E] -MatMul W[E,N] (+Add bias[N])-> [S,B,N] -Reshape-> [S,B,3,E]
//   -Unsqueeze(0)-> [1,S,B,3,E] -Transpose[3,1,2,0,4]-> [3,S,B,1,E] -Squeeze(3)-> [3,S,B,E]
//   -Gather(j, axis 0)-> [S,B,E] -Reshape-> [S,B*H,D] -Transpose[1,0,2]-> [B*H,S,D] -Reshape-> [B,H,S,D]
// so Q/K/V[b,h,s,d] = X[b,s,:] . W[:, jE + hD + d] + bias[jE + hD + d]. That is the projection with W's
// and the bias's j-th third, run on X as it is, Reshape([0,0,H,D]) (a view) to [B,S,H,D] and read with
// *_bshd=1: five Transposes and three Gathers a layer, each a full copy, become two more GEMM launches (a
// third of the weight each). After attention:
//   Y [B,H,S,D] -Transpose[2,0,1,3]-> [S,B,H,D] -Reshape-> [S*B,E] -Gemm/MatMul-> [S*B,N']
//   -Reshape-> [S,B,N'] -Transpose[1,0,2]-> [B,S,N']
// The Gemm is row-wise (transA=0; C absent or one row broadcast), so with y_bshd=1 the same nodes on rows in
// (b, s) order, Reshape([-1,E]) and Reshape([-1,S,N']), give the final [B,S,N'] directly (and the residual
// Add after it, no longer behind a Transpose, becomes the GEMM's epilogue).
// Every Reshape target is resolved here against the exact dims (the batch as a symbol), every perm and axis
// compared; anything else, or an intermediate with another reader, and the chain stays as it is.

// A dim as c * batch^p: everything in these chains is static except the batch (p = 0 when it is static too).
struct Mono {
  int64_t c = 1;
  int p = 0;
  bool operator==(const Mono& o) const { return c == o.c && p == o.p; }
};
using Monos = std::vector<Mono>;

Mono operator*(const Mono& a, const Mono& b) {
  return {a.c * b.c, a.p + b.p};
}

bool is_onnx(const ir::Node& n, const char* op) {
  return n.op_type == op && n.domain.empty() && !n.outputs.empty();
}

bool is_transpose(const ir::Node& n, const std::vector<int64_t>& perm) {
  return is_onnx(n, "Transpose") && n.inputs.size() == 1 && n.attr_ints("perm") == perm;
}

std::vector<Mono> transposed(const Monos& in, const std::vector<int64_t>& perm) {
  Monos out;
  for (int64_t a : perm) out.push_back(in[static_cast<size_t>(a)]);
  return out;
}

// The integers of a constant of rank <= 1.
bool const_ints(const ir::Graph& g, const std::string& v, std::vector<int64_t>* out) {
  auto it = g.initializers.find(v);
  if (it == g.initializers.end() || it->second.rank() > 1) return false;
  const DType t = it->second.dtype();
  if (t != DType::kI64 && t != DType::kI32) return false;
  *out = it->second.to_int_vector();
  return true;
}

// A Reshape's output dims for input dims `in` (a constant target; 0 copies the input's dim unless allowzero;
// one -1 takes what is left, which must divide exactly for every batch).
bool reshape_monos(const ir::Graph& g, const ir::Node& n, const Monos& in, Monos* out) {
  std::vector<int64_t> target;
  if (!is_onnx(n, "Reshape") || n.inputs.size() != 2 || !const_ints(g, n.inputs[1], &target)) return false;
  const bool allowzero = n.attr_int("allowzero", 0) != 0;
  Mono total, known;
  for (const Mono& m : in) total = total * m;
  int infer_at = -1;
  out->assign(target.size(), Mono{});
  for (size_t i = 0; i < target.size(); ++i) {
    const int64_t t = target[i];
    if (t == -1) {
      if (infer_at >= 0) return false;
      infer_at = static_cast<int>(i);
      continue;
    }
    if (t < -1 || (t == 0 && (allowzero || i >= in.size()))) return false;  // no empty dims in these chains
    (*out)[i] = t == 0 ? in[i] : Mono{t, 0};
    known = known * (*out)[i];
  }
  if (known.c <= 0 || known.p > total.p || total.c % known.c != 0) return false;
  const Mono rest{total.c / known.c, total.p - known.p};
  if (infer_at >= 0) {
    (*out)[static_cast<size_t>(infer_at)] = rest;
  } else if (!(rest == Mono{})) {
    return false;
  }
  return true;
}

// Squeeze/Unsqueeze axes (an input from opset 13, an attribute before), normalized against `rank`.
bool axes_of(const ir::Graph& g, const ir::Node& n, int64_t rank, std::vector<int64_t>* axes) {
  if (n.inputs.size() >= 2) {
    if (!const_ints(g, n.inputs[1], axes)) return false;
  } else {
    if (!n.has_attr("axes")) return false;
    *axes = n.attr_ints("axes");
  }
  for (auto& a : *axes) {
    if (a < -rank || a >= rank) return false;
    if (a < 0) a += rank;
  }
  return true;
}

// One of Q, K, V cut from a packed in-projection (the chain in the comment above).
struct HeadSplit {
  std::string x, weight, bias;  // bias "" when the projection has none
  int64_t part = 0, heads = 0, head_dim = 0;
  std::set<size_t> nodes;
};

bool match_head_split(const ir::Graph& g, const PatternGraph& pg, const std::string& v, HeadSplit* m) {
  auto step = [&](const std::string& value, size_t* i) { return pg.producer(value, i); };
  size_t r3, t2, r2, ga, sq, t1, un, r1, lin, mm, t0;
  if (!step(v, &r3) || !is_onnx(g.nodes[r3], "Reshape")) return false;
  if (!step(g.nodes[r3].inputs[0], &t2) || !is_transpose(g.nodes[t2], {1, 0, 2})) return false;
  if (!step(g.nodes[t2].inputs[0], &r2) || !is_onnx(g.nodes[r2], "Reshape")) return false;
  if (!step(g.nodes[r2].inputs[0], &ga) || !is_onnx(g.nodes[ga], "Gather") || g.nodes[ga].inputs.size() != 2)
    return false;
  if (!step(g.nodes[ga].inputs[0], &sq) || !is_onnx(g.nodes[sq], "Squeeze")) return false;
  if (!step(g.nodes[sq].inputs[0], &t1) || !is_transpose(g.nodes[t1], {3, 1, 2, 0, 4})) return false;
  if (!step(g.nodes[t1].inputs[0], &un) || !is_onnx(g.nodes[un], "Unsqueeze")) return false;
  if (!step(g.nodes[un].inputs[0], &r1) || !is_onnx(g.nodes[r1], "Reshape")) return false;
  if (!step(g.nodes[r1].inputs[0], &lin)) return false;
  m->nodes = {r3, t2, r2, ga, sq, t1, un, r1};
  m->bias.clear();
  mm = lin;
  if (is_onnx(g.nodes[lin], "Add") && g.nodes[lin].inputs.size() == 2) {
    const ir::Node& add = g.nodes[lin];
    for (int c = 0; c < 2 && m->bias.empty(); ++c) {
      size_t p;
      if (g.is_constant(add.inputs[1 - c]) && step(add.inputs[c], &p) && is_onnx(g.nodes[p], "MatMul")) {
        m->bias = add.inputs[1 - c];
        mm = p;
      }
    }
    if (m->bias.empty()) return false;
    m->nodes.insert(lin);
  }
  const ir::Node& mat = g.nodes[mm];
  if (!is_onnx(mat, "MatMul") || mat.inputs.size() != 2 || !g.is_constant(mat.inputs[1])) return false;
  if (!step(mat.inputs[0], &t0) || !is_transpose(g.nodes[t0], {1, 0, 2})) return false;
  m->nodes.insert(mm);
  m->nodes.insert(t0);
  m->x = g.nodes[t0].inputs[0];
  m->weight = mat.inputs[1];

  // Dims, step by step, from X's.
  const ir::ValueInfo* xi = g.value(m->x);
  if (!xi || !is_float(xi->dtype) || !xi->shape.has_rank() || xi->shape.rank() != 3) return false;
  const Dim &bd = xi->shape[0], &sd = xi->shape[1], &ed = xi->shape[2];
  if (!sd.is_static() || !ed.is_static() || sd.value() <= 0 || ed.value() <= 0) return false;
  const Mono B = bd.is_static() ? Mono{bd.value(), 0} : Mono{1, 1}, S{sd.value(), 0};
  if (B.c <= 0) return false;
  const Tensor& w = g.initializers.at(m->weight);
  if (w.dtype() != xi->dtype || w.rank() != 2 || w.dim(0) != ed.value() || w.dim(1) <= 0 || w.dim(1) % 3 != 0)
    return false;
  const int64_t n = w.dim(1), e3 = n / 3;
  if (!m->bias.empty()) {
    const Tensor& b = g.initializers.at(m->bias);
    if (b.dtype() != w.dtype() || b.rank() < 1 || b.rank() > 3 || b.numel() != n || b.dims().back() != n)
      return false;  // one row broadcast over [S, B, N], nothing else
  }
  Monos dims;
  if (!reshape_monos(g, g.nodes[r1], {S, B, Mono{n, 0}}, &dims) || dims != Monos{S, B, {3, 0}, {e3, 0}})
    return false;
  std::vector<int64_t> axes;
  if (!axes_of(g, g.nodes[un], 5, &axes) || axes != std::vector<int64_t>{0}) return false;
  dims = transposed({{1, 0}, S, B, {3, 0}, {e3, 0}}, {3, 1, 2, 0, 4});  // [3, S, B, 1, E]
  if (!axes_of(g, g.nodes[sq], 5, &axes) || axes != std::vector<int64_t>{3} || !(dims[3] == Mono{1, 0}))
    return false;
  dims.erase(dims.begin() + 3);  // [3, S, B, E]; Gather(j, axis 0) drops the 3
  std::vector<int64_t> index;
  const ir::Node& gather = g.nodes[ga];
  auto idx = g.initializers.find(gather.inputs[1]);
  if (gather.attr_int("axis", 0) != 0 && gather.attr_int("axis", 0) != -4) return false;
  if (idx == g.initializers.end() || idx->second.rank() != 0 || !const_ints(g, gather.inputs[1], &index) ||
      index.size() != 1 || index[0] < -3 || index[0] > 2)
    return false;
  m->part = index[0] < 0 ? index[0] + 3 : index[0];
  if (!reshape_monos(g, g.nodes[r2], Monos(dims.begin() + 1, dims.end()), &dims) || dims.size() != 3 ||
      !(dims[0] == S) || dims[2].p != 0 || dims[2].c <= 0 || e3 % dims[2].c != 0)
    return false;
  m->head_dim = dims[2].c;
  m->heads = e3 / m->head_dim;
  const Mono H{m->heads, 0}, D{m->head_dim, 0};
  if (!(dims[1] == B * H)) return false;
  // Transpose [1, 0, 2]: [B*H, S, D]; the last Reshape splits B*H back into [B, H].
  return reshape_monos(g, g.nodes[r3], {B * H, S, D}, &dims) && dims == Monos{B, H, S, D};
}

// Y's head merge, out_proj and the batch_first Transpose (the second chain in the comment above).
struct HeadMerge {
  size_t perm = 0, r4 = 0, proj = 0, r5 = 0, t5 = 0;
  int64_t seq = 0, width = 0, out_width = 0;  // S, H*Dv, N'
  Dim batch;
};

bool match_head_merge(const ir::Graph& g, const PatternGraph& pg, const ir::Node& fa, HeadMerge* m) {
  const std::string& y = fa.outputs[0];
  const ir::ValueInfo* yi = g.value(y);
  if (!yi || !yi->shape.has_rank() || yi->shape.rank() != 4) return false;
  for (size_t i = 1; i < 4; ++i)
    if (!yi->shape[i].is_static() || yi->shape[i].value() <= 0) return false;
  const Dim& bd = yi->shape[0];
  const Mono B = bd.is_static() ? Mono{bd.value(), 0} : Mono{1, 1}, H{yi->shape[1].value(), 0},
             S{yi->shape[2].value(), 0}, Dv{yi->shape[3].value(), 0};
  if (B.c <= 0) return false;
  if (!pg.sole_consumer(y, &m->perm) || !is_transpose(g.nodes[m->perm], {2, 0, 1, 3})) return false;
  Monos dims;
  if (!pg.sole_consumer(g.nodes[m->perm].outputs[0], &m->r4) ||
      g.nodes[m->r4].inputs[0] != g.nodes[m->perm].outputs[0] ||
      !reshape_monos(g, g.nodes[m->r4], {S, B, H, Dv}, &dims) || dims != Monos{S * B, H * Dv})
    return false;
  const std::string& rows = g.nodes[m->r4].outputs[0];
  if (!pg.sole_consumer(rows, &m->proj)) return false;
  const ir::Node& p = g.nodes[m->proj];
  const bool gemm = is_onnx(p, "Gemm") && p.inputs.size() >= 2 && p.inputs.size() <= 3;
  if ((!gemm && !(is_onnx(p, "MatMul") && p.inputs.size() == 2)) || p.inputs[0] != rows ||
      p.inputs[1] == rows)
    return false;
  if (gemm && p.attr_int("transA", 0) != 0) return false;
  const ir::ValueInfo* wi = g.value(p.inputs[1]);
  if (!wi || !wi->shape.has_rank() || wi->shape.rank() != 2 || !wi->shape.is_static()) return false;
  const bool trans_b = gemm && p.attr_int("transB", 0) != 0;
  const int64_t k = wi->shape[trans_b ? 1 : 0].value(), n = wi->shape[trans_b ? 0 : 1].value();
  if (k != H.c * Dv.c || n <= 0) return false;
  if (gemm && p.inputs.size() == 3 && !p.inputs[2].empty()) {  // C: one row (or one value) for every row
    const ir::ValueInfo* ci = g.value(p.inputs[2]);
    if (!ci || !ci->shape.has_rank() || !ci->shape.is_static() || ci->shape.rank() > 2) return false;
    const auto cd = ci->shape.static_dims();
    if (cd.size() == 2 && cd[0] != 1) return false;
    if (!cd.empty() && cd.back() != 1 && cd.back() != n) return false;
  }
  if (!pg.sole_consumer(p.outputs[0], &m->r5) || g.nodes[m->r5].inputs[0] != p.outputs[0] ||
      !reshape_monos(g, g.nodes[m->r5], {S * B, {n, 0}}, &dims) || dims != Monos{S, B, {n, 0}})
    return false;
  if (!pg.sole_consumer(g.nodes[m->r5].outputs[0], &m->t5) || !is_transpose(g.nodes[m->t5], {1, 0, 2}))
    return false;
  m->seq = S.c;
  m->batch = bd;
  m->width = H.c * Dv.c;
  m->out_width = n;
  return true;
}

// A new int64 constant (a Reshape target).
std::string add_shape_const(ir::Graph& g, const std::string& base, const std::vector<int64_t>& v) {
  const std::string name = g.unique_name(base);
  g.initializers[name] = Tensor::from_vector(DType::kI64, {static_cast<int64_t>(v.size())}, v);
  g.values[name] = {DType::kI64, Shape::from_dims({static_cast<int64_t>(v.size())})};
  return name;
}

// Columns [part*w, (part+1)*w) of a [rows, 3w] constant (a bias is one row), as a new constant.
std::string add_third(ir::Graph& g, const std::string& src, int64_t part, bool is_bias) {
  const Tensor& t = g.initializers.at(src);
  const int64_t cols = t.dims().back(), w = cols / 3, rows = t.numel() / cols;
  const size_t es = dtype_size(t.dtype());
  Tensor out(t.dtype(), is_bias ? std::vector<int64_t>{w} : std::vector<int64_t>{rows, w});
  const auto* from = static_cast<const uint8_t*>(t.raw());
  auto* to = static_cast<uint8_t*>(out.raw());
  for (int64_t r = 0; r < rows; ++r) std::memcpy(to + r * w * es, from + (r * cols + part * w) * es, w * es);
  const std::string name = g.unique_name(src + "/part" + std::to_string(part));
  g.values[name] = {t.dtype(), Shape::from_dims(out.dims())};
  g.initializers[name] = std::move(out);
  return name;
}

// Rewrites every FusedAttention whose Q/K/V and/or Y sit in the chains above; true when one changed.
Result<bool> fold_multihead_attention(ir::Graph& g) {
  const PatternGraph pg(g);
  std::vector<bool> removed(g.nodes.size(), false);
  std::map<size_t, std::vector<ir::Node>> before;  // new nodes, inserted ahead of the FusedAttention
  std::map<std::string, std::string> thirds;       // (constant, part) -> its sliced copy
  std::vector<std::pair<std::string, ir::ValueInfo>> finals;  // outputs that must keep their shape
  std::vector<std::pair<std::string, Dim>> row_counts;        // B*S of the out_proj rows
  bool changed = false;
  const char* const kInAttrs[3] = {"q_bshd", "k_bshd", "v_bshd"};
  const char* const kNames[3] = {"q", "k", "v"};
  for (size_t fi = 0; fi < g.nodes.size(); ++fi) {
    if (g.nodes[fi].op_type != "FusedAttention" || g.nodes[fi].domain != ops::kKilnDomain ||
        g.nodes[fi].inputs.size() < 3)
      continue;
    const ir::Node& fa = g.nodes[fi];
    // Inputs: all three (or none), so the shared chain has no reader left behind.
    std::array<HeadSplit, 3> split;
    std::set<size_t> chain = {fi};
    bool inputs = true;
    for (size_t i = 0; i < 3 && inputs; ++i) {
      inputs = fa.attr_int(kInAttrs[i], 0) == 0 && match_head_split(g, pg, fa.inputs[i], &split[i]);
      if (inputs) chain.insert(split[i].nodes.begin(), split[i].nodes.end());
    }
    for (size_t n : chain) inputs &= n == fi || !removed[n];
    inputs = inputs && pg.only_used_within(chain, fi);
    HeadMerge merge;
    const bool output = fa.attr_int("y_bshd", 0) == 0 && match_head_merge(g, pg, fa, &merge) &&
                        !removed[merge.perm] && !removed[merge.t5];
    if (!inputs && !output) continue;
    changed = true;
    ir::Node& node = g.nodes[fi];
    if (inputs) {
      for (size_t n : chain)
        if (n != fi) removed[n] = true;
      for (size_t i = 0; i < 3; ++i) {
        const HeadSplit& s = split[i];
        auto third = [&](const std::string& src, bool is_bias) {
          const std::string key = src + '\n' + std::to_string(s.part);
          auto it = thirds.find(key);
          if (it == thirds.end()) it = thirds.emplace(key, add_third(g, src, s.part, is_bias)).first;
          return it->second;
        };
        const DType dt = g.value(s.x)->dtype;
        const std::string base = node.name + "/" + kNames[i];
        auto fresh = [&](const std::string& what) {
          const std::string v = g.unique_name(base + "_" + what);
          g.values[v] = {dt, Shape()};  // claims the name; infer_shapes fills it in
          return v;
        };
        ir::Node mm;
        mm.name = base + "_proj";
        mm.op_type = "MatMul";
        mm.inputs = {s.x, third(s.weight, false)};
        mm.outputs = {fresh("proj")};
        std::string lin = mm.outputs[0];
        before[fi].push_back(std::move(mm));
        if (!s.bias.empty()) {
          ir::Node add;
          add.name = base + "_bias";
          add.op_type = "Add";
          add.inputs = {lin, third(s.bias, true)};
          add.outputs = {fresh("biased")};
          lin = add.outputs[0];
          before[fi].push_back(std::move(add));
        }
        ir::Node rs;
        rs.name = base + "_heads";
        rs.op_type = "Reshape";
        rs.inputs = {lin, add_shape_const(g, base + "_bshd_shape", {0, 0, s.heads, s.head_dim})};
        rs.outputs = {fresh("bshd")};
        rs.attrs["allowzero"] = ir::Attribute::of_int(0);
        node.inputs[i] = rs.outputs[0];
        node.attrs[kInAttrs[i]] = ir::Attribute::of_int(1);
        before[fi].push_back(std::move(rs));
      }
    }
    if (output) {
      removed[merge.perm] = removed[merge.t5] = true;
      const std::string y = node.outputs[0];
      const std::string y_bshd = g.unique_name(y + "_bshd");
      g.values[y_bshd] = {g.value(y)->dtype, Shape()};
      node.outputs[0] = y_bshd;
      node.attrs["y_bshd"] = ir::Attribute::of_int(1);
      ir::Node& r4 = g.nodes[merge.r4];
      ir::Node& r5 = g.nodes[merge.r5];
      const std::string final_out = g.nodes[merge.t5].outputs[0];
      finals.emplace_back(final_out, *g.value(final_out));
      r4.inputs = {y_bshd, add_shape_const(g, r4.name + "/rows", {-1, merge.width})};
      g.values.erase(r4.outputs[0]);  // rows now run (b, s), not (s, b): re-inferred below
      g.values.erase(g.nodes[merge.proj].outputs[0]);
      // batch*seq counts rows of a tensor inference already sized, so it fits; unknown would only lose a dim.
      const Result<Dim> rows = dim_mul(merge.batch, Dim(merge.seq));
      for (const std::string& v : {r4.outputs[0], g.nodes[merge.proj].outputs[0]})
        row_counts.emplace_back(v, rows.ok() ? *rows : Dim::unknown());
      r5.inputs[1] = add_shape_const(g, r5.name + "/bsn", {-1, merge.seq, merge.out_width});
      r5.outputs[0] = final_out;
    }
  }
  if (!changed) return false;
  std::vector<ir::Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (auto it = before.find(i); it != before.end())
      for (auto& n : it->second) nodes.push_back(std::move(n));
    if (!removed[i]) nodes.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(nodes);
  KILN_RETURN_IF_ERROR(eliminate_dead_code(g));
  KILN_RETURN_IF_ERROR(infer_shapes(g));
  // Reshape's -1 over a symbolic batch infers as unknown; the row count is B*S here.
  for (const auto& [name, rows] : row_counts)
    if (auto it = g.values.find(name); it != g.values.end() && it->second.shape.has_rank() &&
                                       it->second.shape.rank() == 2 && it->second.shape[0].is_unknown())
      it->second.shape[0] = rows;
  for (const auto& [name, info] : finals)
    if (const ir::ValueInfo* now = g.value(name); !now || !fits(*now, info))
      return internal_error("fold_attention_layout: '{}' was {} before the head-merge rewrite, {} after",
                            name, info.shape.to_string(), now ? now->shape.to_string() : "missing");
  return true;
}

}  // namespace

Status fold_attention_layout(ir::Graph& g) {
  bool any = false;
  for (const auto& n : g.nodes) any |= n.op_type == "FusedAttention" && n.domain == ops::kKilnDomain;
  if (!any) return Status();
  KILN_RETURN_IF_ERROR(eliminate_dead_code(g));
  KILN_RETURN_IF_ERROR(fold_multihead_attention(g).status());

  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& o : g.nodes[i].outputs)
      if (!o.empty()) producer[o] = i;
  std::map<std::string, int> uses;
  count_reads(g, uses);
  const std::set<std::string> graph_outputs(g.outputs.begin(), g.outputs.end());
  const auto consumers = g.consumers();
  std::set<size_t> removed;
  const char* const kInAttrs[3] = {"q_bshd", "k_bshd", "v_bshd"};

  for (size_t fi = 0; fi < g.nodes.size(); ++fi) {
    ir::Node& fa = g.nodes[fi];
    if (fa.op_type != "FusedAttention" || fa.domain != ops::kKilnDomain || fa.inputs.size() < 3) continue;
    ir::Node folded = fa;
    std::vector<size_t> absorbed;
    for (size_t i = 0; i < 3; ++i) {
      if (folded.attr_int(kInAttrs[i], 0) != 0) continue;
      const std::string& x = fa.inputs[i];
      auto it = producer.find(x);
      if (it == producer.end() || removed.count(it->second)) continue;
      const ir::Node& t = g.nodes[it->second];
      if (!is_head_transpose(t) || uses[x] != 1 || graph_outputs.count(x)) continue;
      folded.inputs[i] = t.inputs[0];
      folded.attrs[kInAttrs[i]] = ir::Attribute::of_int(1);
      absorbed.push_back(it->second);
    }
    const std::string& y = fa.outputs[0];
    if (folded.attr_int("y_bshd", 0) == 0 && uses[y] == 1 && !graph_outputs.count(y)) {
      auto it = consumers.find(y);
      if (it != consumers.end() && it->second.size() == 1) {
        const ir::Node& t = g.nodes[it->second[0]];
        if (is_head_transpose(t) && t.inputs[0] == y && !removed.count(it->second[0])) {
          folded.outputs[0] = t.outputs[0];
          folded.attrs["y_bshd"] = ir::Attribute::of_int(1);
          absorbed.push_back(it->second[0]);
        }
      }
    }
    if (absorbed.empty()) continue;
    // The folded node must infer to exactly the shape the graph had there (the Transpose's output, or Y).
    std::vector<const ir::ValueInfo*> infos;
    for (const auto& in : folded.inputs) infos.push_back(in.empty() ? nullptr : g.value(in));
    bool known = true;
    for (size_t i = 0; i < folded.inputs.size(); ++i)
      known &= folded.inputs[i].empty() || infos[i] != nullptr;
    const ir::ValueInfo* want = g.value(folded.outputs[0]);
    if (!known || !want) continue;
    ops::InferContext ictx(folded, g.opset, infos, std::vector<const Tensor*>(folded.inputs.size(), nullptr));
    if (!ops::infer_node(folded, g.opset, ictx).ok()) continue;
    if (ictx.outputs().empty() || !fits(ictx.outputs()[0], *want)) continue;
    if (folded.outputs[0] != y) g.values.erase(y);
    for (size_t t : absorbed) {
      removed.insert(t);
      if (g.nodes[t].outputs[0] != folded.outputs[0]) g.values.erase(g.nodes[t].outputs[0]);
    }
    fa = std::move(folded);
  }
  if (removed.empty()) return Status();
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size() - removed.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!removed.count(i)) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return Status();
}

}  // namespace kiln::passes
