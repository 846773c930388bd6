// The CUDA backend of a context: its own executor (stream, memory pool, CUDA graphs) over device buffers.
#include "runtime/run_backend.h"
#include "util/error.h"

#ifdef KILN_WITH_CUDA
#include "backends/cuda/executor.h"
#include "runtime/context_state.h"
#include "util/safe_text.h"
#endif

namespace kiln {

#ifdef KILN_WITH_CUDA
namespace {

class CudaRun final : public RunBackend {
 public:
  explicit CudaRun(std::unique_ptr<cuda::GraphExecutor> executor) : executor_(std::move(executor)) {}

  Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs) override {
    return executor_->run(inputs);
  }

  // Bindings are device pointers: inputs are read in place, outputs written into the caller's buffers.
  Status enqueue(ExecutionContext&, ContextState& cs, void* stream) override {
    const EngineState& s = *cs.engine.state();
    // Rebuilt and checked only after a shape, binding or profile change, so a steady stream of enqueue() calls
    // builds and checks nothing.
    if (!cs.device_bindings_valid) {
      inputs_.clear();
      outputs_.clear();
      for (const auto& d : s.inputs) {
        KILN_ASSIGN_OR_RETURN(const BoundInput in,
                              bound_input(cs, d, "call set_tensor_address", "call set_input_shape"));
        inputs_[d.name] = cuda::DeviceTensor{d.dtype, in.dims, in.address, nullptr};
      }
      for (const auto& d : s.outputs) {
        auto b = bound_output(cs, s, d.name);
        if (b == cs.bindings.end())
          return invalid_argument("output '{}' has no address; call set_tensor_address", printable(d.name));
        // Capacity in elements of the output dtype; the executor checks the real size before writing.
        const auto elems = static_cast<int64_t>(b->second.capacity / std::max<size_t>(dtype_size(d.dtype), 1));
        outputs_[d.name] = cuda::DeviceTensor{d.dtype, {elems}, b->second.address, nullptr};
      }
      cs.device_bindings_valid = true;
    }
    return executor_->run_device(inputs_, outputs_, static_cast<cudaStream_t>(stream));
  }

  Result<std::vector<LayerTiming>> profile(ContextState& cs, void* stream) override {
    const EngineState& s = *cs.engine.state();
    std::map<std::string, cuda::DeviceTensor> inputs;
    for (const auto& d : s.inputs) {
      const char* needs = "set_input_shape and set_tensor_address are needed before profiling";
      KILN_ASSIGN_OR_RETURN(const BoundInput in, bound_input(cs, d, needs, needs));
      inputs[d.name] = cuda::DeviceTensor{d.dtype, in.dims, in.address, nullptr};
    }
    return executor_->profile(inputs, static_cast<cudaStream_t>(stream));
  }

  const std::map<std::string, std::vector<int64_t>>& last_output_dims(const ContextState&) const override {
    return executor_->last_output_dims();
  }
  RunInfo last_run_info(const ContextState&) const override { return executor_->last_run_info(); }
  size_t device_bytes() const override { return executor_->device_bytes(); }
  void set_cuda_graphs(bool on) override { executor_->set_cuda_graphs(on); }
  bool cuda_graphs() const override { return executor_->cuda_graphs(); }
  void set_memory_limit(size_t bytes) override { executor_->set_memory_limit(bytes); }
  cuda::GraphExecutor& executor() { return *executor_; }

 private:
  std::unique_ptr<cuda::GraphExecutor> executor_;
  std::map<std::string, cuda::DeviceTensor> inputs_, outputs_;  // the bound buffers as device tensors
};

}  // namespace

Result<std::unique_ptr<RunBackend>> make_cuda_run(const EngineState& s) {
  cuda::ExecutorOptions opts;
  opts.allow_tf32 = s.info.precision == "tf32";
  opts.cuda_graphs = s.info.cuda_graphs;
  opts.weights = s.gpu_weights;
  opts.tactics = s.tactics;
  opts.aliases = s.info.aliases;
  KILN_ASSIGN_OR_RETURN(auto executor, cuda::GraphExecutor::create(s.graph, opts));
  return std::unique_ptr<RunBackend>(std::make_unique<CudaRun>(std::move(executor)));
}

cuda::GraphExecutor* cuda_executor(RunBackend* backend) {
  auto* run = dynamic_cast<CudaRun*>(backend);
  return run ? &run->executor() : nullptr;
}
#else
Result<std::unique_ptr<RunBackend>> make_cuda_run(const EngineState&) {
  return unsupported("this kiln was built without CUDA; it cannot run a CUDA engine");
}

cuda::GraphExecutor* cuda_executor(RunBackend*) { return nullptr; }
#endif

}  // namespace kiln
