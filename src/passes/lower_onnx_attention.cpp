// lower_onnx_attention: ONNX opset-23 `Attention` nodes (src/ops/attention.cpp) become kiln's FusedAttention
// where the two agree, so CUDA engines run them with the flash kernel (Attention itself has only the CPU
// reference, which CUDA engines fall back to).
//
// Lowered when the node has no past_key/past_value (no cache concat; causal is then top-left, as
// FusedAttention's), softcap is 0, present_key / present_value / qk_matmul_output are unused, V has Q's
// dtype, the mask (if any) is bool or Q's dtype, head sizes are at most 512 (the CUDA kernel's limit) and
// shapes are known well enough to check the rewrite:
//   4-D: FusedAttention(Q, K, V[, mask]) with causal = is_causal and the node's scale (when it has one: both
//        default to 1/sqrt(head_size));
//   3-D: Reshape Q/K/V [B, S, H*X] -> [B, S, H, X] (shape [0, 0, H, X], a view), FusedAttention with
//        q_bshd = k_bshd = v_bshd = y_bshd = 1, Reshape Y [B, Sq, Hq, Dv] -> [B, Sq, Hq*Dv]: no Transposes.
//        Needs static head sizes (the hidden sizes of Q or K, and of V).
// Both ops broadcast the mask over [B, Hq, Sq, T] and let KV heads divide query heads the same way (query
// head h reads KV head h / (Hq / Hkv)). The spec scales Q and K by sqrt(scale) each and FusedAttention scales
// the scores once: the same math up to rounding. Fully masked rows give NaN in both (nan_to_zero stays 0). A
// rewrite whose FusedAttention does not infer to the node's own Y shape is not made. Runs right before
// fuse_attention, so fold_attention_layout then sees these nodes like any other.
#include <map>
#include <optional>
#include <set>

#include "ops/attention.h"
#include "passes/pass.h"

namespace kiln::passes {

namespace {

// Names that may not be reused: every value, initializer, node output and graph input/output.
class Names {
 public:
  explicit Names(const ir::Graph& g) : g_(g) {
    for (const auto& n : g.nodes)
      for (const auto& o : n.outputs) used_.insert(o);
    used_.insert(g.inputs.begin(), g.inputs.end());
    used_.insert(g.outputs.begin(), g.outputs.end());
  }
  std::string fresh(const std::string& base) {
    std::string n = g_.unique_name(base);
    for (int i = 1; used_.count(n); ++i) n = g_.unique_name(base + "_" + std::to_string(i));
    used_.insert(n);
    return n;
  }

 private:
  const ir::Graph& g_;
  std::set<std::string> used_;
};

// Names read anywhere (node inputs, subgraph bodies at any depth, graph outputs).
void collect_reads(const ir::Graph& g, std::set<std::string>& out) {
  for (const auto& n : g.nodes) {
    out.insert(n.inputs.begin(), n.inputs.end());
    for (const auto& [key, a] : n.attrs)
      if (a.g) collect_reads(*a.g, out);
  }
  out.insert(g.outputs.begin(), g.outputs.end());
}

bool fits(const ir::ValueInfo& got, const ir::ValueInfo* want) {
  if (!want) return true;
  if (got.dtype != want->dtype || !got.shape.has_rank()) return false;
  if (!want->shape.has_rank()) return true;
  if (got.shape.rank() != want->shape.rank()) return false;
  for (size_t i = 0; i < got.shape.rank(); ++i) {
    const Dim &a = got.shape[i], &b = want->shape[i];
    if (a.is_static() && b.is_static() && a.value() != b.value()) return false;
  }
  return true;
}

// The inferred outputs of `node` over the graph's value infos, or nothing when an input has none or inference
// fails (then the rewrite is not made).
std::optional<std::vector<ir::ValueInfo>> infer(const ir::Graph& g, const ir::Node& node,
                                                const std::map<std::string, ir::ValueInfo>& extra = {}) {
  std::vector<const ir::ValueInfo*> infos;
  for (const auto& in : node.inputs) {
    if (in.empty()) {
      infos.push_back(nullptr);
      continue;
    }
    auto it = extra.find(in);
    const ir::ValueInfo* vi = it != extra.end() ? &it->second : g.value(in);
    if (!vi || vi->dtype == DType::kUndefined) return std::nullopt;
    infos.push_back(vi);
  }
  std::vector<const Tensor*> values(node.inputs.size(), nullptr);
  for (size_t i = 0; i < node.inputs.size(); ++i)
    if (!node.inputs[i].empty() && g.is_constant(node.inputs[i]))
      values[i] = &g.initializers.at(node.inputs[i]);
  ops::InferContext ctx(node, g.opset, infos, values);
  if (!ops::infer_node(node, g.opset, ctx).ok()) return std::nullopt;
  return ctx.outputs();
}

Tensor shape_tensor(const std::vector<int64_t>& dims) {
  return Tensor::from_vector<int64_t>(DType::kI64, {static_cast<int64_t>(dims.size())}, dims);
}

// The nodes that replace Attention node `n`, or nothing when it must stay.
std::optional<std::vector<ir::Node>> lower(ir::Graph& g, const ir::Node& n,
                                           const std::set<std::string>& reads, Names& names) {
  using namespace ops;
  auto input = [&](size_t i) { return i < n.inputs.size() ? n.inputs[i] : std::string(); };
  for (size_t i : {kAttnPastKey, kAttnPastValue, kAttnNonpadKvSeqlen})
    if (!input(i).empty()) return std::nullopt;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty() && reads.count(n.outputs[i])) return std::nullopt;
  if (n.attr_float("softcap", 0.f) != 0.f) return std::nullopt;

  const ir::ValueInfo *qi = g.value(input(kAttnQ)), *ki = g.value(input(kAttnK)),
                      *vi = g.value(input(kAttnV));
  if (!qi || !ki || !vi || !qi->shape.has_rank() || !ki->shape.has_rank() || !vi->shape.has_rank())
    return std::nullopt;
  if (vi->dtype != qi->dtype) return std::nullopt;
  const std::string mask = input(kAttnMask);
  if (!mask.empty()) {
    const ir::ValueInfo* mi = g.value(mask);
    if (!mi || (mi->dtype != DType::kBool && mi->dtype != qi->dtype)) return std::nullopt;
  }
  // The node must be valid as it is; its dims drive the 3-D reshapes.
  std::vector<const ir::ValueInfo*> infos;
  for (const auto& in : n.inputs) infos.push_back(in.empty() ? nullptr : g.value(in));
  for (size_t i = 0; i < infos.size(); ++i)
    if (!n.inputs[i].empty() && !infos[i]) return std::nullopt;
  InferContext ictx(n, g.opset, infos, std::vector<const Tensor*>(infos.size(), nullptr));
  if (!infer_node(n, g.opset, ictx).ok()) return std::nullopt;
  auto dims = attention_dims(ictx);
  if (!dims.ok()) return std::nullopt;
  const AttentionDims& d = *dims;
  // FusedAttention's CUDA kernel takes head sizes up to 512: a larger one stays Attention, which CUDA engines
  // run through the CPU fallback instead of failing at run time.
  constexpr int64_t kMaxFusedHeadSize = 512;
  for (const Dim* x : {&d.head, &d.v_head})
    if (x->is_static() && x->value() > kMaxFusedHeadSize) return std::nullopt;

  ir::Node fa;
  fa.name = n.name;
  fa.op_type = "FusedAttention";
  fa.domain = std::string(kKilnDomain);
  fa.inputs = {input(kAttnQ), input(kAttnK), input(kAttnV)};
  if (!mask.empty()) fa.inputs.push_back(mask);
  if (n.has_attr("scale")) fa.attrs["scale"] = ir::Attribute::of_float(n.attr_float("scale", 1.f));
  fa.attrs["causal"] = ir::Attribute::of_int(n.attr_int("is_causal", 0) != 0 ? 1 : 0);
  const std::string& y = n.outputs[kAttnY];

  if (!d.three_d) {
    fa.outputs = {y};
    auto out = infer(g, fa);
    if (!out || !fits((*out)[0], g.value(y))) return std::nullopt;
    return std::vector<ir::Node>{std::move(fa)};
  }

  if (!d.head.is_static() || !d.v_head.is_static()) return std::nullopt;
  const std::string base = n.name.empty() ? std::string("attention") : n.name;
  std::vector<ir::Node> nodes;
  std::map<std::string, ir::ValueInfo> new_infos;
  std::map<std::string, Tensor> new_consts;  // added to the graph only when the rewrite is made
  auto reshape = [&](const std::string& name, const std::string& in, std::vector<int64_t> shape,
                     const std::string& out) {
    const std::string shape_name = names.fresh(base + "_" + name + "_shape");
    new_consts[shape_name] = shape_tensor(shape);
    new_infos[shape_name] = {DType::kI64, Shape({static_cast<int64_t>(shape.size())})};
    ir::Node r;
    r.name = base + "/" + name;
    r.op_type = "Reshape";
    r.inputs = {in, shape_name};
    r.outputs = {out};
    return r;
  };
  // [B, S, H*X] -> [B, S, H, X]; 0 copies B and S, which may be dynamic.
  auto split = [&](size_t slot, const ir::ValueInfo& info, int64_t heads, const Dim& x, const char* tag) {
    const std::string out = names.fresh(n.inputs[slot] + "_heads");
    nodes.push_back(
        reshape(std::string(tag) + "_split_heads", n.inputs[slot], {0, 0, heads, x.value()}, out));
    new_infos[out] = {info.dtype, Shape(std::vector<Dim>{info.shape[0], info.shape[1], Dim(heads), x})};
    fa.inputs[slot] = out;
  };
  const int64_t hq = d.q_heads.value(), hkv = d.kv_heads.value();
  split(kAttnQ, *qi, hq, d.head, "q");
  split(kAttnK, *ki, hkv, d.head, "k");
  split(kAttnV, *vi, hkv, d.v_head, "v");
  for (const char* a : {"q_bshd", "k_bshd", "v_bshd", "y_bshd"}) fa.attrs[a] = ir::Attribute::of_int(1);
  const std::string y4 = names.fresh(y + "_heads");
  fa.outputs = {y4};
  auto out = infer(g, fa, new_infos);
  if (!out) return std::nullopt;
  new_infos[y4] = (*out)[0];
  ir::Node merge = reshape("y_merge_heads", y4, {0, 0, hq * d.v_head.value()}, y);

  // The merge Reshape reads its constant shape: infer it on a scratch graph holding just what it reads.
  ir::Graph probe;
  probe.opset = g.opset;
  probe.initializers[merge.inputs[1]] = new_consts.at(merge.inputs[1]);
  probe.values[merge.inputs[1]] = new_infos.at(merge.inputs[1]);
  probe.values[y4] = new_infos.at(y4);
  auto merged = infer(probe, merge);
  if (!merged || !fits((*merged)[0], g.value(y))) return std::nullopt;
  for (auto& [name, t] : new_consts) g.initializers[name] = std::move(t);
  for (auto& [name, info] : new_infos) g.values[name] = info;
  nodes.push_back(std::move(fa));
  nodes.push_back(std::move(merge));
  return nodes;
}

}  // namespace

Status lower_onnx_attention(ir::Graph& g) {
  bool any = false;
  for (const auto& n : g.nodes) any |= n.op_type == "Attention" && n.domain.empty();
  if (!any) return Status();
  std::set<std::string> reads;
  collect_reads(g, reads);
  Names names(g);
  std::vector<ir::Node> out;
  out.reserve(g.nodes.size());
  for (auto& n : g.nodes) {
    std::optional<std::vector<ir::Node>> lowered;
    if (n.op_type == "Attention" && n.domain.empty()) lowered = lower(g, n, reads, names);
    if (!lowered) {
      out.push_back(std::move(n));
      continue;
    }
    for (size_t i = 1; i < n.outputs.size(); ++i)
      if (!n.outputs[i].empty()) g.values.erase(n.outputs[i]);  // unread: they go with the node
    for (auto& r : *lowered) out.push_back(std::move(r));
  }
  g.nodes = std::move(out);
  return Status();
}

}  // namespace kiln::passes
