// pack_qkv: a FusedAttention whose Q, K and V are head splits (Reshape [B, S, H*D] -> [B, S, H, D], read
// through the *_bshd layouts) of one row-packed source takes that source directly (packed=1, see
// src/ops/fused_attention.h):
//   - three FusedMatMuls of the same input with constant weights and no residual or activation (BERT's
//     query/key/value Linears, ViT's in-projection thirds): their weights and biases are concatenated at
//     build time into one QKV FusedMatMul, so one GEMM with 3x the columns replaces three (fewer launches,
//     fuller tiles);
//   - the three outputs of a Split along the last axis (GPT-2's c_attn output): the Split, a full copy of the
//     [B, S, 3E] activation, goes away.
// Every intermediate (GEMM outputs, split parts, head-split views) must be read by nothing else. Runs after
// fuse_matmul_epilogue (which makes the FusedMatMuls) and fold_attention_layout (which sets the layouts).
#include <cstring>

#include "ops/fused_attention.h"
#include "ops/op.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

// A head split feeding the attention: Reshape of src [B, S, W] into [B, S, heads, size], its output read by
// the attention alone.
struct HeadSplit {
  size_t reshape = 0;
  std::string src;
  int64_t heads = 0, size = 0;
};

bool head_split(const PatternGraph& pg, const std::string& v, size_t att, HeadSplit* out) {
  const ir::Graph& g = pg.graph();
  size_t r = 0, reader = 0;
  if (v.empty() || !pg.producer(v, &r) || !pg.sole_consumer(v, &reader) || reader != att) return false;
  const ir::Node& n = g.nodes[r];
  if (n.op_type != "Reshape" || !n.domain.empty() || n.outputs.size() != 1 || n.inputs.empty()) return false;
  const ir::ValueInfo* in = g.value(n.inputs[0]);
  const ir::ValueInfo* o = g.value(v);
  if (!in || !o || !in->shape.has_rank() || !o->shape.has_rank() || in->shape.rank() != 3 || o->shape.rank() != 4)
    return false;
  const Shape &s = in->shape, &d = o->shape;
  if (!d[0].same_as(s[0]) || !d[1].same_as(s[1]) || !d[2].is_static() || !d[3].is_static() || !s[2].is_static() ||
      d[2].value() * d[3].value() != s[2].value())
    return false;
  *out = {r, n.inputs[0], d[2].value(), d[3].value()};
  return true;
}

// Three FusedMatMuls of one input, constant 2-D weights of one dtype and layout, same alpha, optional
// constant biases, no residual or activation; each output read by its head split alone.
bool same_input_projections(const PatternGraph& pg, const HeadSplit (&hs)[3], size_t (&mm)[3]) {
  const ir::Graph& g = pg.graph();
  for (int i = 0; i < 3; ++i) {
    size_t reader = 0;
    if (!pg.producer(hs[i].src, &mm[i]) || !pg.sole_consumer(hs[i].src, &reader) || reader != hs[i].reshape)
      return false;
    const ir::Node& n = g.nodes[mm[i]];
    if (n.op_type != "FusedMatMul" || n.domain != ops::kKilnDomain || n.inputs.size() < 2) return false;
    if (n.inputs.size() > 3 && !n.inputs[3].empty()) return false;  // residual
    if (n.attr_string("activation", "none") != "none") return false;
    const auto w = g.initializers.find(n.inputs[1]);
    if (w == g.initializers.end() || w->second.rank() != 2) return false;
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
      const auto b = g.initializers.find(n.inputs[2]);
      if (b == g.initializers.end() || b->second.dtype() != w->second.dtype()) return false;
    }
    const ir::Node& first = g.nodes[mm[0]];
    const Tensor& w0 = g.initializers.at(first.inputs[1]);
    if (n.inputs[0] != first.inputs[0] || n.attr_int("trans_b", 0) != first.attr_int("trans_b", 0) ||
        n.attr_float("alpha", 1.f) != first.attr_float("alpha", 1.f) || w->second.dtype() != w0.dtype())
      return false;
  }
  return mm[0] != mm[1] && mm[1] != mm[2] && mm[0] != mm[2];
}

// Weights [n_i, k] (trans_b) stacked along n, or [k, n_i] joined row by row; biases (zeros where absent).
void concat_projections(ir::Graph& g, const size_t (&mm)[3], const std::string& base, std::string* w_name,
                        std::string* b_name) {
  const bool trans_b = g.nodes[mm[0]].attr_int("trans_b", 0) != 0;
  const Tensor* w[3];
  int64_t n_total = 0;
  for (int i = 0; i < 3; ++i) {
    w[i] = &g.initializers.at(g.nodes[mm[i]].inputs[1]);
    n_total += trans_b ? w[i]->dim(0) : w[i]->dim(1);
  }
  const int64_t k = trans_b ? w[0]->dim(1) : w[0]->dim(0);
  const DType dt = w[0]->dtype();
  const size_t es = dtype_size(dt);
  Tensor cat(dt, trans_b ? std::vector<int64_t>{n_total, k} : std::vector<int64_t>{k, n_total});
  auto* dst = static_cast<char*>(cat.raw());
  if (trans_b) {
    for (int i = 0; i < 3; ++i) {
      std::memcpy(dst, w[i]->raw(), w[i]->nbytes());
      dst += w[i]->nbytes();
    }
  } else {
    for (int64_t r = 0; r < k; ++r)
      for (int i = 0; i < 3; ++i) {
        const size_t row = static_cast<size_t>(w[i]->dim(1)) * es;
        std::memcpy(dst, static_cast<const char*>(w[i]->raw()) + r * row, row);
        dst += row;
      }
  }
  *w_name = add_constant(g, base + "/qkv_weight", std::move(cat));
  b_name->clear();
  bool any_bias = false;
  for (size_t i : mm) any_bias = any_bias || (g.nodes[i].inputs.size() > 2 && !g.nodes[i].inputs[2].empty());
  if (!any_bias) return;
  Tensor bias(dt, {n_total});
  auto* b = static_cast<char*>(bias.raw());
  for (int i = 0; i < 3; ++i) {
    const ir::Node& n = g.nodes[mm[i]];
    const size_t bytes = static_cast<size_t>(trans_b ? w[i]->dim(0) : w[i]->dim(1)) * es;
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) std::memcpy(b, g.initializers.at(n.inputs[2]).raw(), bytes);
    b += bytes;  // else zeros
  }
  *b_name = add_constant(g, base + "/qkv_bias", std::move(bias));
}

// Split node sp along the last axis into exactly three parts, each read only by one of the head splits; the
// element offset of each head split's part.
bool split_parts(const PatternGraph& pg, const HeadSplit (&hs)[3], size_t* sp, int64_t (&offset)[3]) {
  const ir::Graph& g = pg.graph();
  if (!pg.producer(hs[0].src, sp)) return false;
  const ir::Node& n = g.nodes[*sp];
  if (n.op_type != "Split" || !n.domain.empty() || n.outputs.size() != 3 || n.inputs.empty()) return false;
  const ir::ValueInfo* x = g.value(n.inputs[0]);
  if (!x || !x->shape.has_rank() || x->shape.rank() != 3 || !x->shape[2].is_static()) return false;
  const int64_t axis = n.attr_int("axis", 0);
  if (axis != 2 && axis != -1) return false;
  std::vector<int64_t> sizes;
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    const auto c = g.initializers.find(n.inputs[1]);
    if (c == g.initializers.end()) return false;
    sizes = c->second.to_int_vector();
  } else if (n.has_attr("split")) {
    sizes = n.attr_ints("split");
  } else if (x->shape[2].value() % 3 == 0) {
    sizes.assign(3, x->shape[2].value() / 3);
  }
  if (sizes.size() != 3 || sizes[0] + sizes[1] + sizes[2] != x->shape[2].value()) return false;
  for (int i = 0; i < 3; ++i) {
    int part = -1;
    for (int j = 0; j < 3; ++j)
      if (n.outputs[j] == hs[i].src) part = j;
    size_t reader = 0;
    if (part < 0 || !pg.sole_consumer(hs[i].src, &reader) || reader != hs[i].reshape) return false;
    offset[i] = 0;
    for (int j = 0; j < part; ++j) offset[i] += sizes[j];
  }
  return hs[0].src != hs[1].src && hs[1].src != hs[2].src && hs[0].src != hs[2].src;
}

void make_packed(ir::Node& att, const std::string& qkv, const HeadSplit (&hs)[3], const int64_t (&offset)[3]) {
  att.inputs[0] = qkv;
  att.inputs[1].clear();
  att.inputs[2].clear();
  for (const char* a : {"q_bshd", "k_bshd", "v_bshd"}) att.attrs.erase(a);
  att.attrs["packed"] = ir::Attribute::of_int(1);
  att.attrs["q_num_heads"] = ir::Attribute::of_int(hs[0].heads);
  att.attrs["kv_num_heads"] = ir::Attribute::of_int(hs[1].heads);
  att.attrs["head_size"] = ir::Attribute::of_int(hs[0].size);
  att.attrs["qkv_offsets"] = ir::Attribute::of_ints({offset[0], offset[1], offset[2]});
}

}  // namespace

Status pack_qkv(ir::Graph& g) {
  std::vector<bool> removed(g.nodes.size(), false);
  bool changed = false;
  for (size_t a = 0; a < g.nodes.size(); ++a) {
    const ir::Node& att = g.nodes[a];
    if (removed[a] || att.op_type != "FusedAttention" || att.domain != ops::kKilnDomain || att.inputs.size() < 3 ||
        ops::packed_qkv(att) || att.attr_int("q_bshd", 0) == 0 || att.attr_int("k_bshd", 0) == 0 ||
        att.attr_int("v_bshd", 0) == 0)
      continue;
    const PatternGraph pg(g);  // rebuilt per match: a rewrite changes producers and readers
    HeadSplit hs[3];
    bool ok = true;
    for (int i = 0; i < 3 && ok; ++i) ok = head_split(pg, att.inputs[i], a, &hs[i]);
    if (!ok || hs[0].reshape == hs[1].reshape || hs[1].reshape == hs[2].reshape || hs[0].reshape == hs[2].reshape)
      continue;
    // Q/K/V share a head size; K and V a head count that divides Q's.
    if (hs[0].size != hs[1].size || hs[1].size != hs[2].size || hs[1].heads != hs[2].heads ||
        hs[0].heads % hs[1].heads != 0)
      continue;
    std::set<size_t> gone = {hs[0].reshape, hs[1].reshape, hs[2].reshape};
    int64_t offset[3] = {0, 0, 0};
    std::string qkv;
    size_t mm[3] = {0, 0, 0}, sp = 0;
    if (same_input_projections(pg, hs, mm)) {
      if (!none_removed({mm[0], mm[1], mm[2]}, removed)) continue;
      const ir::ValueInfo* out = g.value(g.nodes[mm[0]].outputs[0]);
      if (!out || !out->shape.has_rank() || out->shape.rank() != 3) continue;
      std::string w, b;
      concat_projections(g, mm, att.name, &w, &b);
      ir::Node fused = g.nodes[mm[0]];
      fused.name = g.unique_name(att.name + "/qkv_proj");
      qkv = g.unique_name(att.name + "/qkv");
      fused.outputs = {qkv};
      fused.inputs = {fused.inputs[0], w, b};
      if (b.empty()) fused.inputs.pop_back();
      const int64_t width = hs[0].heads * hs[0].size + 2 * hs[1].heads * hs[1].size;
      g.values[qkv] = ir::ValueInfo{out->dtype, Shape(std::vector<Dim>{out->shape[0], out->shape[1], Dim(width)})};
      offset[1] = hs[0].heads * hs[0].size;
      offset[2] = offset[1] + hs[1].heads * hs[1].size;
      // The three GEMMs read the same input, so the first one's slot comes after its producer.
      const size_t slot = std::min({mm[0], mm[1], mm[2]});
      for (size_t i : mm) {
        g.values.erase(g.nodes[i].outputs[0]);
        removed[i] = i != slot;
      }
      g.nodes[slot] = std::move(fused);
    } else if (split_parts(pg, hs, &sp, offset)) {
      if (removed[sp]) continue;
      qkv = g.nodes[sp].inputs[0];
      for (const auto& o : g.nodes[sp].outputs) g.values.erase(o);
      removed[sp] = true;
    } else {
      continue;
    }
    for (size_t r : gone) {
      g.values.erase(g.nodes[r].outputs[0]);
      removed[r] = true;
    }
    make_packed(g.nodes[a], qkv, hs, offset);
    changed = true;
  }
  if (changed) erase_removed(g, removed);
  return Status();
}

}  // namespace kiln::passes
