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
// Dead code goes first, so readers that fuse_attention orphaned (the Shape that fed torch's K^T reshape) do
// not count as other readers. Runs right after fuse_attention.
#include <set>

#include "ops/op.h"
#include "passes/pass.h"

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

}  // namespace

Status fold_attention_layout(ir::Graph& g) {
  bool any = false;
  for (const auto& n : g.nodes) any |= n.op_type == "FusedAttention" && n.domain == ops::kKilnDomain;
  if (!any) return Status();
  KILN_RETURN_IF_ERROR(eliminate_dead_code(g));

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
