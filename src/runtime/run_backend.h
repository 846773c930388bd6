// How one context's runs reach the backend that computes them: the CPU reference over host tensors, or a CUDA
// executor over device buffers. ExecutionContext makes the checks every backend shares (names, dtypes, profiles,
// bundle routing) and hands the rest here, so it names no backend itself.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/context.h"
#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln {

namespace cuda {
class GraphExecutor;
}
struct ContextState;
struct EngineState;

class RunBackend {
 public:
  virtual ~RunBackend() = default;
  // Host tensors in, host tensors out (ExecutionContext::infer, after its checks).
  virtual Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs) = 0;
  // ExecutionContext::enqueue: reads the bound inputs at their set shapes and writes the bound outputs. `ctx` is
  // the context itself, for a backend that runs through its infer().
  virtual Status enqueue(ExecutionContext& ctx, ContextState& cs, void* stream) = 0;
  // Per-layer times of one run over the bound inputs.
  virtual Result<std::vector<LayerTiming>> profile(ContextState& cs, void* stream) = 0;
  // The last run's output dims, for outputs whose shape depends on input values.
  virtual const std::map<std::string, std::vector<int64_t>>& last_output_dims(const ContextState& cs) const = 0;
  virtual RunInfo last_run_info(const ContextState& cs) const = 0;
  virtual size_t device_bytes() const { return 0; }
  virtual void set_cuda_graphs(bool) {}
  virtual bool cuda_graphs() const { return false; }
  virtual void set_memory_limit(size_t) {}
};

// The backend a new context of engine `s` runs on: its own CUDA executor (stream, memory pool, CUDA graphs) or
// the engine's shared CPU executor. An error when this kiln cannot run the engine's backend.
Result<std::unique_ptr<RunBackend>> make_run_backend(const EngineState& s);

// Defined in cpu_run.cpp and cuda_run.cpp.
std::unique_ptr<RunBackend> make_cpu_run(const EngineState& s);
Result<std::unique_ptr<RunBackend>> make_cuda_run(const EngineState& s);
// The CUDA executor behind a backend (GPU tests look inside it); null for another backend.
cuda::GraphExecutor* cuda_executor(RunBackend* backend);

}  // namespace kiln
