// Add(X, R) → LayerNormalization (over the last axis) becomes one FusedAddLayerNorm (kiln domain): the GPU
// reads X and R once, writes Y, and writes the sum S only where something else reads it. Pre-norm
// transformers read it again as the next residual (h = h + attn(ln(h))); post-norm blocks
// (BERT: ln(x + sublayer(x))) need no S.
//
// Conditions: the Add's inputs have provably the same shape (static and equal dims, or the same symbol) and
// float dtype, so no broadcasting hides in it; the LayerNormalization reads the sum as X, normalizes the last
// axis with f32 statistics (stash_type 1), and its Mean/InvStdDev outputs are absent or unread.
//
// Where it runs: after fuse_matmul_epilogue. A residual Add straight after a GEMM is better left to the
// GEMM's epilogue: post-norm, both ways move the same bytes (epilogue: the GEMM reads R, the norm reads the
// sum; here: the GEMM writes, this node reads X and R), and pre-norm the epilogue writes S as its output
// where this node would write S on top of reading X and R. So this pass takes the Adds the epilogue cannot:
// residuals behind a layout op (a Transpose) or another producer than a GEMM, sums of embeddings.
//
// The fused node takes the Add's place in the node order when S has other readers (they may come before the
// LayerNormalization) and the norm's gamma/beta exist by then; else, with no S, the norm's place.
#include "ops/op.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

// Two shapes provably equal dim by dim (static and equal, or the same symbol).
bool same_shape(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i)
    if (!a[i].same_as(b[i])) return false;
  return true;
}

// Output i of node n is absent, or nobody reads it.
bool unread_output(const PatternGraph& p, const ir::Node& n, size_t i) {
  return i >= n.outputs.size() || n.outputs[i].empty() ||
         (p.consumers(n.outputs[i]).empty() && !p.is_external(n.outputs[i]));
}

// A LayerNormalization over the last axis alone, with f32 statistics and nothing reading its statistics.
bool last_axis_layer_norm(const PatternGraph& p, const ir::Node& ln, const ir::ValueInfo& x) {
  if (ln.op_type != "LayerNormalization" || !ln.domain.empty() || ln.inputs.size() < 2 ||
      ln.inputs[1].empty() || ln.outputs.empty() || ln.outputs[0].empty())
    return false;
  if (!unread_output(p, ln, 1) || !unread_output(p, ln, 2)) return false;
  if (ln.attr_int("stash_type", 1) != 1 || !x.shape.has_rank() || x.shape.rank() == 0) return false;
  const int64_t rank = static_cast<int64_t>(x.shape.rank());
  const int64_t axis = ln.attr_int("axis", -1);
  return axis == -1 || axis == rank - 1;
}

}  // namespace

Status fuse_add_layer_norm(ir::Graph& g) {
  PatternGraph pg(g);
  std::vector<bool> removed(g.nodes.size(), false);
  for (size_t l = 0; l < g.nodes.size(); ++l) {
    const ir::Node& ln = g.nodes[l];
    if (removed[l] || ln.op_type != "LayerNormalization" || ln.inputs.empty()) continue;
    const std::string& sum = ln.inputs[0];
    const ir::ValueInfo* sv = g.value(sum);
    size_t a;
    if (!sv || !is_float(sv->dtype) || !pg.producer(sum, &a) || removed[a]) continue;
    if (!last_axis_layer_norm(pg, ln, *sv)) continue;
    const ir::Node& add = g.nodes[a];
    if (add.op_type != "Add" || !add.domain.empty() || add.inputs.size() != 2 || add.outputs.size() != 1)
      continue;
    const ir::ValueInfo* xv = g.value(add.inputs[0]);
    const ir::ValueInfo* rv = g.value(add.inputs[1]);
    if (!xv || !rv || xv->dtype != sv->dtype || rv->dtype != sv->dtype || !same_shape(xv->shape, rv->shape) ||
        !same_shape(xv->shape, sv->shape))
      continue;
    // S is needed when anything besides this norm reads the sum.
    const bool keep_sum = pg.is_external(sum) || pg.consumers(sum).size() > 1;
    bool params_ready = true;  // gamma/beta exist at the Add's position
    for (size_t i = 1; i < ln.inputs.size(); ++i)
      if (size_t p; !ln.inputs[i].empty() && pg.producer(ln.inputs[i], &p) && p > a) params_ready = false;
    if (keep_sum && !params_ready) continue;
    ir::Node n;
    n.name = ln.name;
    n.op_type = "FusedAddLayerNorm";
    n.domain = std::string(ops::kKilnDomain);
    n.inputs = {add.inputs[0], add.inputs[1], ln.inputs[1]};
    if (ln.inputs.size() > 2 && !ln.inputs[2].empty()) n.inputs.push_back(ln.inputs[2]);
    n.outputs = {ln.outputs[0]};
    if (keep_sum) n.outputs.push_back(sum);
    n.attrs["epsilon"] = ir::Attribute::of_float(ln.attr_float("epsilon", 1e-5f));
    for (size_t i = 1; i < ln.outputs.size(); ++i)
      if (!ln.outputs[i].empty()) g.values.erase(ln.outputs[i]);
    if (!keep_sum) g.values.erase(sum);
    // Where the fused node goes (see the file comment); the other slot is dropped.
    const size_t at = params_ready ? a : l;
    removed[at == a ? l : a] = true;
    g.nodes[at] = std::move(n);
  }
  erase_removed(g, removed);
  return Status();
}

}  // namespace kiln::passes
