// What an Engine holds: immutable after build or load, shared by every context and thread.
#pragma once
#include <memory>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"
#include "util/tactic_cache.h"

namespace kiln {

namespace cpu {
class GraphExecutor;
}
namespace cuda {
class SharedDeviceWeights;
}

struct EngineState {
  EngineInfo info;
  std::vector<TensorDesc> inputs, outputs;
  std::vector<OptimizationProfile> profiles;
  std::shared_ptr<const ir::Graph> graph;
  std::shared_ptr<const cpu::GraphExecutor> cpu;
  // CUDA engines: the weights on the GPU, uploaded by the first context and shared by all of them.
  std::shared_ptr<cuda::SharedDeviceWeights> gpu_weights;
  // CUDA engines: tactic choices (timed by the builder, stored in the file), shared by every context.
  std::shared_ptr<TacticCache> tactics = std::make_shared<TacticCache>();
  // A bundle: its member engines, in routing order (graph is the first one's, profiles all of theirs in
  // order). A context runs each call on the member whose profile fits the shapes best. Empty for an engine.
  std::vector<std::shared_ptr<const EngineState>> members;
  // Bundles: profile k of profiles is member slots[k].first's profile slots[k].second.
  std::vector<std::pair<int, int>> slots;
};

// Fills io descs, backend program and info from state->graph; shared by Builder and Engine::load
// (engine_state.cpp).
Status finalize_engine_state(EngineState& state);
// Makes `bundle` the bundle of `members` (each finalized): checks they agree on backend, inputs, outputs and
// aliases, merges their I/O shapes and profiles, and shares equal weights on the GPU. Shared by
// Engine::bundle and Engine::load (bundle_state.cpp).
Status finalize_bundle_state(EngineState& bundle, std::vector<EngineState> members);

}  // namespace kiln
