// Nodes the CUDA backend would run on the CPU reference, predicted with the executor's own placement rule on
// the graph as the builder leaves it. The rule reads the CUDA kernel table, so it exists only in CUDA builds;
// elsewhere the check says so instead of guessing.
#include <fmt/format.h>

#include "lint/lint_context.h"
#include "passes/pass.h"
#include "util/safe_text.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/placement.h"
#endif

namespace kiln::lint {

void check_placement(LintContext& ctx, const LintGraph& lg) {
  if (ctx.options.backend == BackendKind::kCpu) return;
#ifdef KILN_WITH_CUDA
  if (!lg.tainted.empty()) {
    ctx.skip("cpu-fallback: the model has parts kiln cannot import (see the errors); fix those first");
    return;
  }
  ir::Graph g = lg.graph;
  if (Status s = passes::run_pipeline(g, passes::default_pipeline()); !s.ok()) {
    ctx.skip("cpu-fallback: kiln's passes refuse the model: " + s.message());
    return;
  }
  std::vector<OptimizationProfile> profiles(1);
  for (const auto& [name, dims] : ctx.options.dims) profiles[0].inputs[name] = InputRange{dims, dims, dims};
  auto placed = cuda::predict_cpu_fallbacks(g, profiles);
  if (!placed.ok()) {
    ctx.skip("cpu-fallback: " + placed.status().message());
    return;
  }
  // One finding per op and reason: a model with 40 fallback Loops needs one piece of advice, not 40.
  std::vector<std::pair<std::string, std::vector<const cuda::PlacedNode*>>> groups;
  for (const auto& p : *placed) {
    const std::string key = p.op + "\n" + p.why;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& gr) { return gr.first == key; });
    if (it == groups.end()) it = groups.insert(groups.end(), {key, {}});
    it->second.push_back(&p);
  }
  for (const auto& [key, nodes] : groups) {
    const cuda::PlacedNode& first = *nodes.front();
    auto& f = ctx.add(
        LintSeverity::kWarning, "cpu-fallback", first.name, first.op, "",
        fmt::format("{} {} node(s) would run on the CPU reference on the CUDA backend ({}): each copies "
                    "its inputs from the GPU and its results back, waits for the GPU to finish first, "
                    "and keeps the run from being captured as one CUDA graph",
                    nodes.size(), first.op, first.why),
        "export these ops differently (docs/ops.md lists which ops and dtypes have CUDA kernels), or "
        "accept the cost: kiln build reports the fallback nodes and --no-cpu-fallback refuses them");
    for (size_t i = 1; i < nodes.size(); ++i) f.others.push_back(printable(nodes[i]->name));
  }
#else
  (void)lg;
  // auto in a kiln without CUDA builds for the CPU, where nothing falls back; only an explicit request says
  // so.
  if (ctx.options.backend == BackendKind::kCuda)
    ctx.skip(
        "cpu-fallback: predicting which nodes the CUDA backend runs on the CPU needs a kiln built with the "
        "CUDA backend (this one was configured with -DKILN_WITH_CUDA=OFF); no GPU is needed for it");
#endif
}

}  // namespace kiln::lint
