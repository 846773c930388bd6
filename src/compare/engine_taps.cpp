// kiln compare --layerwise reads an engine's intermediate tensors by making them outputs of a copy of the
// engine: the optimized graph, its fusions and kernels stay as built, only more values are copied out.
#include <fmt/format.h>

#include <set>

#include "kiln/compare.h"
#include "engine/engine_state.h"
#include "util/no_throw.h"

namespace kiln::compare {

std::map<std::string, std::string> engine_values(const Engine& engine) {
  std::map<std::string, std::string> out;
  if (!engine.state() || !engine.state()->graph) return out;
  for (const auto& n : engine.state()->graph->nodes)
    for (const auto& v : n.outputs)
      if (!v.empty()) out[v] = fmt::format("{} '{}'", n.op_type, n.name);
  return out;
}

std::vector<EngineLayer> engine_layers(const Engine& engine) {
  std::vector<EngineLayer> out;
  if (!engine.state() || !engine.state()->graph) return out;
  const ir::Graph& g = *engine.state()->graph;
  for (const auto& n : g.nodes) {
    EngineLayer l{n.name, n.op_type, {}, {}, false};
    for (const auto& v : n.inputs)
      if (!v.empty()) l.inputs.push_back(v);
    for (const auto& v : n.outputs) {
      if (v.empty()) continue;
      l.outputs.push_back(v);
      const ir::ValueInfo* vi = g.value(v);
      l.float_outputs |= vi && (vi->dtype == DType::kF32 || vi->dtype == DType::kF16 || vi->dtype == DType::kBF16);
    }
    out.push_back(std::move(l));
  }
  return out;
}

Result<Engine> with_extra_outputs(const Engine& engine, const std::vector<std::string>& values) {
  return no_throw("compare::with_extra_outputs", [&]() -> Result<Engine> {
    if (!engine.state() || !engine.state()->graph)
      return Status(StatusCode::kInvalidArgument, "with_extra_outputs: the engine is empty");
    EngineState s = *engine.state();
    auto g = std::make_shared<ir::Graph>(*s.graph);
    std::set<std::string> present(g->outputs.begin(), g->outputs.end());
    const auto produced = engine_values(engine);
    for (const auto& v : values) {
      if (!produced.count(v))
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("value '{}' is not computed by the engine (fused or folded away)", v));
      if (present.insert(v).second) g->outputs.push_back(v);
    }
    s.graph = std::move(g);
    s.cpu.reset();  // finalize_engine_state makes the executors (and CUDA's weight holder) for the new graph
    KILN_RETURN_IF_ERROR(finalize_engine_state(s));
    return Engine(std::make_shared<const EngineState>(std::move(s)));
  });
}

}  // namespace kiln::compare
