// ExecutionContext: per-thread state of one Engine (input shapes, bindings, scratch memory).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln {

struct ContextState;  // internal

// One layer's share of a profiled run (ExecutionContext::profile_layers).
struct LayerTiming {
  std::string name;       // node name (fused nodes: the fused node's name)
  std::string op;         // op type, e.g. "Conv", "FusedMatMul"
  std::string placement;  // "gpu", "host" (shape math), "cpu-fallback" (no CUDA kernel: copies + CPU)
  std::string tactic;     // kernel/algorithm chosen, when the kernel reports one
  double ms = 0;          // wall time of the layer on its stream
};

// How the last run executed (CUDA engines; CPU engines report only the node count).
struct RunInfo {
  bool cuda_graph = false;   // one CUDA graph launch
  bool arena = false;        // activations in the shape's planned arena
  std::string not_captured;  // why this shape runs node by node, when it does
  size_t arena_bytes = 0;    // the shape's activation arena
  int gpu_nodes = 0, host_nodes = 0, fallback_nodes = 0;
  int downloads = 0;         // device values read back to the host during the run
  // CUDA: the shape plans (activation arena + CUDA graph) the context holds, least recently used out past
  // plan_cache_limit. A plan is per input shapes and buffers, and per value of the inputs in
  // value_keyed_inputs: small graph inputs whose values the host reads (a length, a step, a flag), so each
  // value gets its own captured graph instead of a read-back in the middle of every run.
  int cached_plans = 0;
  int plan_cache_limit = 0;
  std::vector<std::string> value_keyed_inputs;
  // Engine bundles: the member engine the run went to (Engine::members() order); -1 for a single engine.
  int bundle_member = -1;
};

class ExecutionContext {
 public:
  ExecutionContext(ExecutionContext&&) noexcept;
  ExecutionContext& operator=(ExecutionContext&&) noexcept;
  ~ExecutionContext();

  // Selects the optimization profile that shapes are checked against. A bundle's context picks the member and
  // its profile for every run from the input shapes (Engine::bundle says how); set_profile pins one instead
  // (-1 goes back to routing), and profile() is then that one, else the one the last run went to.
  Status set_profile(int index);
  int profile() const;
  // Concrete dims for one input; an error names the input, dim and allowed range.
  Status set_input_shape(const std::string& name, const std::vector<int64_t>& dims);
  // Output dims for the current input shapes (for outputs whose size depends on data: after a run).
  Result<std::vector<int64_t>> output_shape(const std::string& name) const;
  // Caller-owned buffers for enqueue(): host memory on the CPU backend, device memory on CUDA.
  Status set_tensor_address(const std::string& name, void* address, size_t capacity_bytes);
  // Runs with the bound buffers. stream: cudaStream_t on CUDA, ignored on CPU (runs synchronously).
  Status enqueue(void* stream = nullptr);
  // CUDA engines: capture each input-shape/binding combination as a CUDA graph and replay it (default on; the
  // engine's build setting, overridable per context). No effect on CPU engines.
  void set_cuda_graphs(bool enabled);
  bool cuda_graphs() const;
  // Runs the bound buffers once, without a CUDA graph, timing every layer (CUDA events on GPU). Blocks.
  Result<std::vector<LayerTiming>> profile_layers(void* stream = nullptr);
  // Caps the device memory this context may hold (activation arenas and scratch); 0 = no cap. A run that needs
  // more fails with kOutOfMemory naming the sizes (as does one the GPU itself cannot serve, with the free
  // memory), and the context keeps working at smaller shapes.
  void set_device_memory_limit(size_t bytes);
  // How the last run (enqueue or infer) executed: CUDA graph or not and why, arena size, node placement.
  RunInfo last_run_info() const;
  // Device bytes this context holds now (activation arena and scratch), not counting engine weights.
  size_t device_memory_bytes() const;
  // Convenience: host arrays in, host arrays out. Shapes are taken from the tensors.
  Result<std::map<std::string, Tensor>> infer(const std::map<std::string, Tensor>& inputs);

  const Engine& engine() const;

  explicit ExecutionContext(std::unique_ptr<ContextState> state);
  // For kiln's own tests and tools (backend internals); not part of the stable API.
  ContextState& state_for_testing() { return *state_; }

 private:
  std::unique_ptr<ContextState> state_;
};

}  // namespace kiln
