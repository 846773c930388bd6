// What makes a loaded or built EngineState usable: its I/O descriptions, the backend's executor state, and the
// checks of its aliases (finalize_engine_state). Shared by the builder and the engine loader.
#include "engine/engine_state.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "backends/cpu/executor.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/device_weights.h"
#endif
#include "ir/in_place.h"
#include "util/error.h"
#include "util/safe_text.h"

namespace kiln {

std::string_view backend_name(BackendKind b) {
  switch (b) {
    case BackendKind::kAuto: return "auto";
    case BackendKind::kCpu: return "cpu";
    case BackendKind::kCuda: return "cuda";
  }
  return "?";
}

Status finalize_engine_state(EngineState& s) {
  const ir::Graph& g = *s.graph;
  s.inputs.clear();
  s.outputs.clear();
  for (const auto& name : g.inputs) {
    const ir::ValueInfo* v = g.value(name);
    s.inputs.push_back({name, v ? v->dtype : DType::kUndefined, v ? v->shape : Shape()});
  }
  for (const auto& name : g.outputs) {
    const ir::ValueInfo* v = g.value(name);
    s.outputs.push_back({name, v ? v->dtype : DType::kUndefined, v ? v->shape : Shape()});
  }
  if (s.info.backend == BackendKind::kCpu) {
    auto missing = cpu::missing_kernels(g);
    if (!missing.empty())
      return unsupported("the CPU backend has no kernel for: {}", fmt::join(missing, ", "));
    s.cpu = std::make_shared<cpu::GraphExecutor>(s.graph);
  }
#ifdef KILN_WITH_CUDA
  if (s.info.backend == BackendKind::kCuda) s.gpu_weights = std::make_shared<cuda::SharedDeviceWeights>();
#endif
  std::set<std::string> aliased_inputs;
  for (const auto& [out, in] : s.info.aliases) {
    KILN_RETURN_IF_ERROR(ir::check_alias(g, out, in).with_context("engine alias"));
    if (!aliased_inputs.insert(in).second)
      return invalid_argument("engine alias: input '{}' takes two outputs", printable(in));
  }
  s.info.num_nodes = g.nodes.size();
  s.info.weight_bytes = 0;
  for (const auto& [n, t] : g.initializers) s.info.weight_bytes += t.nbytes();
  return Status();
}

}  // namespace kiln
