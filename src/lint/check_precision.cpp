// With --fp16 planned: the nodes whose values are most likely to leave f16's range (±65504). Looked for in
// the graph as kiln's passes leave it (a LayerNorm written as ReduceMean/Pow/Sqrt is one fused node there,
// computed with f32 statistics), so patterns kiln already handles are not reported.
#include <fmt/format.h>

#include "lint/lint_context.h"
#include "passes/pass.h"
#include "util/safe_text.h"

namespace kiln::lint {

namespace {

using S = LintSeverity;

// "a,b,c" for --fp32-layers, the first few names and ",..." past them.
std::string layer_list(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 4; ++i) s += (i ? "," : "") + names[i];
  return names.size() > 4 ? s + ",..." : s;
}

// A sum of this many elements overflows f16 once their mean magnitude passes 65504 / N (16 at N = 4096).
constexpr int64_t kLargeReduction = 4096;

class PrecisionCheck {
 public:
  PrecisionCheck(LintContext& ctx, const ir::Graph& g) : ctx_(ctx), g_(g) {
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      for (const auto& o : g_.nodes[i].outputs) producer_[o] = i;
    // Sizes of the dims the caller gave (--shapes), by symbol; other dynamic dims count as 1.
    for (const auto& [name, dims] : ctx.options.dims) {
      const ir::ValueInfo* v = g_.value(name);
      if (!v || !v->shape.has_rank() || v->shape.rank() != dims.size()) continue;
      for (size_t i = 0; i < dims.size(); ++i)
        if (v->shape[i].is_symbolic()) symbols_[v->shape[i].symbol_name()] = dims[i];
    }
  }

  void run() {
    std::vector<std::string> norms, softmaxes;
    for (const auto& n : g_.nodes) {
      if (n.op_type == "LayerNormalization" || n.op_type == "RMSNormalization" ||
          n.op_type == "FusedAddLayerNorm")
        norms.push_back(n.name);
      else if (n.op_type == "Softmax" || n.op_type == "LogSoftmax")
        softmaxes.push_back(n.name);
      else if (n.op_type == "ReduceSum" || n.op_type == "ReduceMean" || n.op_type == "ReduceL1" ||
               n.op_type == "ReduceL2" || n.op_type == "ReduceLogSumExp")
        reduction(n);
    }
    if (!norms.empty()) {
      auto& f = ctx_.add(
          S::kInfo, "f16-norm", norms.front(), g_.nodes[index_of(norms.front())].op_type, "",
          fmt::format("{} normalization node(s) read activations that --fp16 stores in f16: kiln "
                      "computes their mean and variance in f32, but a value above 65504 reaching "
                      "them (a transformer's residual stream can grow that large) is already inf",
                      norms.size()),
          "if kiln compare --fp16 shows inf/NaN or large errors after these nodes, keep them and the "
          "Add feeding them in f32: kiln build --fp16 --fp32-layers " +
              layer_list(norms));
      f.others.assign(norms.begin() + 1, norms.end());
    }
    if (!softmaxes.empty()) {
      auto& f = ctx_.add(
          S::kInfo, "f16-softmax", softmaxes.front(), g_.nodes[index_of(softmaxes.front())].op_type, "",
          fmt::format("{} Softmax node(s) outside a fused attention: kiln subtracts the row maximum "
                      "and sums in f32, so the softmax itself does not overflow, but logits above "
                      "65504 (unscaled scores, large temperatures) are inf before it",
                      softmaxes.size()),
          "scale scores before the softmax (as attention does by 1/sqrt(head_dim)), or keep the "
          "node and its producer in f32: kiln build --fp16 --fp32-layers " +
              layer_list(softmaxes));
      f.others.assign(softmaxes.begin() + 1, softmaxes.end());
    }
  }

 private:
  size_t index_of(const std::string& name) const {
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      if (g_.nodes[i].name == name) return i;
    return 0;
  }

  int64_t size_of(const Dim& d) const {
    if (d.is_static()) return d.value();
    auto it = d.is_symbolic() ? symbols_.find(d.symbol_name()) : symbols_.end();
    return it != symbols_.end() ? it->second : 1;
  }

  // The elements one output of a reduction sums: the product of the reduced dims (all of them without axes).
  int64_t reduced_count(const ir::Node& n) const {
    const ir::ValueInfo* in = n.inputs.empty() ? nullptr : g_.value(n.inputs[0]);
    if (!in || !in->shape.has_rank()) return 0;
    std::vector<int64_t> axes = n.attr_ints("axes");
    if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
      auto c = g_.initializers.find(n.inputs[1]);
      if (c == g_.initializers.end()) return 0;
      axes.clear();
      for (int64_t i = 0; i < c->second.numel(); ++i)
        axes.push_back(static_cast<int64_t>(c->second.get_as_double(i)));
    }
    const int64_t rank = static_cast<int64_t>(in->shape.rank());
    int64_t count = 1;
    if (axes.empty()) {
      if (n.attr_int("noop_with_empty_axes", 0)) return 1;
      for (const Dim& d : in->shape.dims()) count *= size_of(d);
      return count;
    }
    for (int64_t a : axes) {
      const int64_t k = a < 0 ? a + rank : a;
      if (k < 0 || k >= rank) return 0;
      count *= size_of(in->shape[k]);
    }
    return count;
  }

  // The value the reduction reads is x*x or x^2: its elements are stored in f16 before the reduction.
  std::string squared(const ir::Node& n) const {
    auto it = n.inputs.empty() ? producer_.end() : producer_.find(n.inputs[0]);
    if (it == producer_.end()) return "";
    const ir::Node& p = g_.nodes[it->second];
    if (p.op_type == "Mul" && p.inputs.size() == 2 && p.inputs[0] == p.inputs[1]) return p.name;
    if (p.op_type == "Pow" && p.inputs.size() == 2) {
      auto c = g_.initializers.find(p.inputs[1]);
      if (c != g_.initializers.end() && c->second.numel() == 1 && c->second.get_as_double(0) == 2.0)
        return p.name;
    }
    return "";
  }

  void reduction(const ir::Node& n) {
    if (const std::string sq = squared(n); !sq.empty()) {
      ctx_.add(S::kWarning, "f16-square", n.name, n.op_type, n.inputs[0],
               fmt::format(
                   "{} node '{}' reduces squares computed by node '{}': with --fp16 each square is stored in "
                   "f16, so any element above 256 in magnitude becomes inf before the {}",
                   n.op_type, printable(n.name), printable(sq), n.op_type),
               "use LayerNormalization / RMSNormalization (opset 17 / 23), or ReduceSumSquare, which kiln "
               "computes "
               "in f32; or keep these nodes in f32: kiln build --fp16 --fp32-layers " +
                   n.name + "," + sq);
      return;
    }
    if (n.op_type != "ReduceSum" && n.op_type != "ReduceL1") return;
    const int64_t count = reduced_count(n);
    if (count < kLargeReduction) return;
    ctx_.add(S::kWarning, "f16-reduce-sum", n.name, n.op_type, n.inputs[0],
             fmt::format(
                 "{} node '{}' sums {} elements of '{}' into each output: kiln accumulates in f32, but with "
                 "--fp16 the sum is stored in f16 and overflows once the elements average more than {:.3g} "
                 "in magnitude",
                 n.op_type, printable(n.name), count, printable(n.inputs[0]),
                 65504.0 / static_cast<double>(count)),
             "use ReduceMean where a mean is meant (it stays in range), or keep the node in f32: kiln build "
             "--fp16 "
             "--fp32-layers " +
                 n.name);
  }

  LintContext& ctx_;
  const ir::Graph& g_;
  std::map<std::string, size_t> producer_;
  std::map<std::string, int64_t> symbols_;
};

}  // namespace

void check_precision(LintContext& ctx, const LintGraph& lg) {
  // As the builder would leave the graph; a model the passes refuse is looked at as imported.
  ir::Graph g = lg.graph;
  if (!lg.tainted.empty() || !passes::run_pipeline(g, passes::default_pipeline()).ok()) g = lg.graph;
  PrecisionCheck(ctx, g).run();
}

}  // namespace kiln::lint
