// If, Loop and Scan: whether what decides the branch or the trip count is fixed before a run (constants,
// input shapes) or read from tensor values, and what kiln does in each case. Works on the ModelProto, so
// models the importer refuses are still covered.
#include <fmt/format.h>

#include "lint/lint_context.h"
#include "util/safe_text.h"

namespace kiln::lint {

namespace {

using S = LintSeverity;

// What a value depends on, in increasing order: only constants, input shapes (through Shape/Size), or the
// values of graph inputs.
enum class Level { kConst = 0, kShape = 1, kData = 2 };

struct Dep {
  Level level = Level::kData;
  std::string origin;  // for kData: the graph input (or op) the value comes from
};

using Scope = std::map<std::string, Dep>;

Dep dep_of(const Scope& scope, const std::string& v) {
  auto it = scope.find(v);
  return it != scope.end() ? it->second : Dep{Level::kData, ""};
}

Dep max_dep(const Dep& a, const Dep& b) {
  return b.level > a.level ? b : a;
}

std::string origin_text(const Dep& d) {
  return d.origin.empty() ? std::string("tensor values") : "the values of '" + printable(d.origin) + "'";
}

// How the CUDA backend runs a body: node by node, each node where it has a kernel, so nothing inside a body is
// fused with the rest of the model.
const char* kGpuBodies = "the body's nodes run on the GPU where they have kernels, node by node, not fused with "
                         "the rest of the model";

class ControlFlowCheck {
 public:
  explicit ControlFlowCheck(LintContext& ctx) : ctx_(ctx) {}

  // Analyzes g (a subgraph's inputs take the levels given) and returns the levels of its outputs.
  std::vector<Dep> graph(const kiln_onnx::GraphProto& g, Scope scope, const std::vector<Dep>& input_levels,
                         bool top) {
    for (const auto& t : g.initializer()) scope[t.name()] = {Level::kConst, ""};
    int k = 0;
    for (const auto& in : g.input()) {
      if (scope.count(in.name()) && scope[in.name()].level == Level::kConst && top)
        continue;  // IR < 4 duplicate
      if (top)
        scope[in.name()] = {Level::kData, in.name()};
      else
        scope[in.name()] =
            k < static_cast<int>(input_levels.size()) ? input_levels[k] : Dep{Level::kData, ""};
      ++k;
    }
    for (int i = 0; i < g.node_size(); ++i) node(g.node(i), i, scope);
    std::vector<Dep> out;
    for (const auto& o : g.output()) out.push_back(dep_of(scope, o.name()));
    return out;
  }

 private:
  void node(const kiln_onnx::NodeProto& n, int index, Scope& scope) {
    const std::string& op = n.op_type();
    const bool onnx_domain = n.domain().empty() || n.domain() == "ai.onnx";
    Dep result{Level::kConst, ""};
    if (onnx_domain && (op == "Shape" || op == "Size")) {
      result = {Level::kShape, ""};
    } else if (onnx_domain && (op.rfind("Random", 0) == 0 || op == "Bernoulli" || op == "Multinomial")) {
      result = {Level::kData, op + " node '" + node_name(n, index) + "'"};
    } else {
      for (const auto& in : n.input())
        if (!in.empty()) result = max_dep(result, dep_of(scope, in));
    }
    if (onnx_domain && op == "If")
      if_node(n, index, scope);
    else if (onnx_domain && op == "Loop")
      loop_node(n, index, scope);
    else if (onnx_domain && op == "Scan")
      scan_node(n, index, scope);
    else
      for (const auto& a : n.attribute())  // subgraphs of other ops (custom ones): their If/Loops count too
        if (a.has_g()) graph(a.g(), scope, {}, false);
    // What comes out of control flow (or a custom op) is treated as data: lint does not follow branches.
    if (op == "If" || op == "Loop" || op == "Scan" || !op_supported(n))
      result = {Level::kData, op + " node '" + node_name(n, index) + "'"};
    for (const auto& o : n.output())
      if (!o.empty()) scope[o] = result;
  }

  const kiln_onnx::GraphProto* attr_graph(const kiln_onnx::NodeProto& n, const char* key) {
    for (const auto& a : n.attribute())
      if (a.name() == key && a.has_g()) return &a.g();
    return nullptr;
  }

  void if_node(const kiln_onnx::NodeProto& n, int index, const Scope& scope) {
    for (const char* b : {"then_branch", "else_branch"})
      if (const auto* g = attr_graph(n, b)) graph(*g, scope, {}, false);
    if (n.input_size() < 1) return;
    const std::string& cond = n.input(0);
    const Dep d = dep_of(scope, cond);
    const std::string name = node_name(n, index);
    const std::string head =
        fmt::format("If node '{}': its condition '{}'", printable(name), printable(cond));
    switch (d.level) {
      case Level::kConst:
        ctx_.add(S::kInfo, "if-static", name, "If", cond,
                 head +
                     " is a constant, so the same branch runs every time: kiln folds the If at build, compiles "
                     "only that branch, and its ops run on the GPU like the rest of the model",
                 "nothing to do");
        break;
      case Level::kShape:
        ctx_.add(
            S::kInfo, "if-static", name, "If", cond,
            head +
                " depends only on input shapes (Shape/Size), not on tensor values: where the dims it reads are "
                "static in the model, kiln folds the If at build and compiles only the branch taken; where they "
                "are dynamic it is computed on the host per run, "
                "without reading anything back from the GPU, so the run can still be one CUDA graph per input "
                "shape (" +
                kGpuBodies + ")",
            "if every shape you build for takes the same branch, export with those dims static or trace the "
            "model so the export keeps only that branch");
        break;
      case Level::kData:
        ctx_.add(
            S::kWarning, "if-data-dependent", name, "If", cond,
            head + " depends on " + origin_text(d) +
                ": on the GPU backend kiln reads it back from the GPU on "
                "every run (a device-to-host sync, which also prevents capturing the run as one CUDA graph), "
                "then runs the chosen branch (" +
                kGpuBodies + ")",
            "compute both branches and select with Where (no sync, both on the GPU), or keep the decision in "
            "your own code and build the parts around it as engines of their own (kiln extract, "
            "docs/extract.md)");
        break;
    }
  }

  void loop_node(const kiln_onnx::NodeProto& n, int index, const Scope& scope) {
    const bool has_m = n.input_size() > 0 && !n.input(0).empty();
    const bool has_cond = n.input_size() > 1 && !n.input(1).empty();
    const Dep m = has_m ? dep_of(scope, n.input(0)) : Dep{Level::kConst, ""};
    const Dep cond_in = has_cond ? dep_of(scope, n.input(1)) : Dep{Level::kConst, ""};
    std::vector<Dep> body_inputs = {{Level::kShape, ""}, cond_in};
    for (int i = 2; i < n.input_size(); ++i) body_inputs.push_back(dep_of(scope, n.input(i)));
    Dep cond_out{Level::kConst, ""};
    if (const auto* body = attr_graph(n, "body")) {
      auto outs = graph(*body, scope, body_inputs, false);
      if (!outs.empty()) cond_out = outs[0];
    }
    const Dep exit = max_dep(cond_in, cond_out);
    const std::string name = node_name(n, index);
    std::string count = !has_m                     ? "no trip count (it runs until its condition turns false)"
                        : m.level == Level::kConst ? "a constant trip count"
                        : m.level == Level::kShape ? "a trip count from input shapes"
                                                   : "a trip count that depends on " + origin_text(m);
    if (m.level == Level::kData || exit.level == Level::kData) {
      const std::string why = m.level == Level::kData
                                  ? count
                                  : count + ", and an exit condition that depends on " + origin_text(exit);
      ctx_.add(S::kWarning, "loop-data-dependent", name, "Loop", has_m ? n.input(0) : "",
               fmt::format(
                   "Loop node '{}' has {}: the number of iterations is known only while it runs. On the GPU "
                   "backend kiln reads the count and condition back from the GPU (each iteration when the body "
                   "computes the condition), which prevents capturing the run as one CUDA graph ({})",
                   printable(name), why, kGpuBodies),
               "keep the loop in your own code and build the body as its own engine (kiln extract), or bound "
               "it: a fixed "
               "maximum count with the early exit computed as a mask (Where) stays on the GPU once unrolled");
    } else {
      ctx_.add(
          S::kInfo, "loop-static", name, "Loop", has_m ? n.input(0) : "",
          fmt::format(
              "Loop node '{}' has {} and no exit condition that depends on data: the same number of "
              "iterations for each input shape; with nothing else read back, the run stays one CUDA graph per shape ({})",
              printable(name), count, kGpuBodies),
          "unroll it at export when the count is small (tracing unrolls Python loops), so the body's ops are "
          "fused with the rest of the model");
    }
  }

  void scan_node(const kiln_onnx::NodeProto& n, int index, const Scope& scope) {
    if (const auto* body = attr_graph(n, "body")) graph(*body, scope, {}, false);
    const std::string name = node_name(n, index);
    ctx_.add(
        S::kInfo, "scan", name, "Scan", "",
        fmt::format("Scan node '{}' runs its body once per step along the scanned axis (a count fixed by the "
                    "input shape); slices and stacking are device copies ({})",
                    printable(name), kGpuBodies),
        "if it is a recurrence, export it as the ONNX RNN/GRU/LSTM op or unrolled at a fixed length");
  }

  LintContext& ctx_;
};

}  // namespace

void check_control_flow(LintContext& ctx) {
  ControlFlowCheck c(ctx);
  c.graph(ctx.model.graph(), {}, {}, true);
}

}  // namespace kiln::lint
