#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/context.h"
#include "kiln/engine.h"
#include "engine/engine_state.h"
#include "runtime/run_backend.h"

namespace kiln {

struct Binding {
  void* address = nullptr;
  size_t capacity = 0;
};


struct ContextState {
  Engine engine;
  // What runs this context's work (null for a bundle, whose member contexts have theirs).
  std::unique_ptr<RunBackend> backend;
  int profile = 0;
  std::map<std::string, std::vector<int64_t>> input_dims;
  std::map<std::string, Binding> bindings;
  std::map<std::string, std::vector<int64_t>> last_output_dims;
  // False after a shape, binding or profile change: a backend that keeps the bound buffers in its own form (CUDA
  // enqueue) rebuilds and checks them, then sets it.
  bool device_bindings_valid = false;

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

// Where an output goes: its own binding, else (an aliased output: a KV cache) its input's buffer.
std::map<std::string, Binding>::const_iterator bound_output(const ContextState& cs, const EngineState& s,
                                                           const std::string& output);

// Input `d`'s bound buffer at its set dims, checked against the buffer's size and the context's profile;
// `no_address` and `no_shape` say what to do when either is missing.
struct BoundInput {
  void* address = nullptr;
  std::vector<int64_t> dims;
};
Result<BoundInput> bound_input(const ContextState& cs, const TensorDesc& d, const char* no_address,
                               const char* no_shape);

// Bundles: the member context a run with the current input shapes (or `dims`, for infer) goes to, made if new,
// with this context's shapes and bindings set on it; the error lists what every member takes.
Result<ExecutionContext*> routed_member(ContextState& cs, const std::map<std::string, std::vector<int64_t>>* dims = nullptr);

}  // namespace kiln
