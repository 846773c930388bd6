#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/device_tensor.h"
#include "kiln/context.h"
#include "kiln/engine.h"
#include "engine/engine_state.h"

namespace kiln {

struct Binding {
  void* address = nullptr;
  size_t capacity = 0;
};

namespace cuda {
class GraphExecutor;
}

struct ContextState {
  Engine engine;
  // CUDA engines: this context's GPU executor (stream, memory pool, device weights).
  std::shared_ptr<cuda::GraphExecutor> gpu;
  int profile = 0;
  std::map<std::string, std::vector<int64_t>> input_dims;
  std::map<std::string, Binding> bindings;
  std::map<std::string, std::vector<int64_t>> last_output_dims;
  // CUDA enqueue(): the bound buffers as device tensors, rebuilt and checked only after a shape, binding or
  // profile change, so a steady stream of enqueue() calls builds and checks nothing.
  bool device_bindings_valid = false;
  std::map<std::string, cuda::DeviceTensor> device_inputs, device_outputs;

  // Bundles (EngineState::members): a context per member engine, made on first use; each run goes to the member
  // whose profile takes the input shapes (route_bundle) or, after set_profile, to the pinned profile's member.
  struct Bundle {
    std::vector<std::unique_ptr<ExecutionContext>> contexts;
    std::vector<uint64_t> synced;  // the `generation` whose shapes and bindings each member context holds
    uint64_t generation = 1;       // bumped by every shape or binding change
    bool pinned = false;           // set_profile chose `profile`
    int routed = -1;               // the profile the last run went to
    uint64_t routed_generation = 0;
    std::optional<bool> cuda_graphs;
    size_t memory_limit = 0;
  } bundle;
  bool is_bundle() const { return !engine.state()->members.empty(); }
};

// Bundles: the member context a run with the current input shapes (or `dims`, for infer) goes to, made if new,
// with this context's shapes and bindings set on it; the error lists what every member takes.
Result<ExecutionContext*> routed_member(ContextState& cs, const std::map<std::string, std::vector<int64_t>>* dims = nullptr);

}  // namespace kiln
