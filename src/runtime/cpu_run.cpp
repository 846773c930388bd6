// The CPU reference backend of a context: host tensors, the engine's one shared executor.
#include <cstring>

#include "backends/cpu/executor.h"
#include "runtime/context_state.h"
#include "runtime/run_backend.h"
#include "util/error.h"
#include "util/safe_text.h"

namespace kiln {

namespace {

class CpuRun final : public RunBackend {
 public:
  explicit CpuRun(std::shared_ptr<const cpu::GraphExecutor> executor) : executor_(std::move(executor)) {}

  Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs) override {
    return executor_->run(inputs);
  }

  // Bindings are host pointers: the run goes through infer() (its checks and bookkeeping), then the outputs are
  // copied into their buffers.
  Status enqueue(ExecutionContext& ctx, ContextState& cs, void*) override {
    const EngineState& s = *cs.engine.state();
    std::map<std::string, Tensor> inputs;
    for (const auto& d : s.inputs) {
      KILN_ASSIGN_OR_RETURN(const BoundInput in, bound_input(cs, d, "call set_tensor_address", "call set_input_shape"));
      inputs[d.name] = Tensor::wrap(d.dtype, in.dims, in.address);
    }
    for (const auto& d : s.outputs)
      if (bound_output(cs, s, d.name) == cs.bindings.end())
        return invalid_argument("output '{}' has no address; call set_tensor_address", printable(d.name));
    KILN_ASSIGN_OR_RETURN(auto outputs, ctx.infer(inputs));
    // Check every size before writing any, so a too-small buffer never leaves partial results. The CPU backend
    // computes every output aside, so an output bound to an input's buffer (an alias) is copied there after the
    // whole run has read it.
    for (const auto& d : s.outputs) {
      const Tensor& t = outputs.at(d.name);
      const auto& b = bound_output(cs, s, d.name)->second;
      if (t.nbytes() > b.capacity)
        return invalid_argument("output '{}' is {} ({} bytes) but its buffer holds {} bytes", printable(d.name), t.describe(),
                                t.nbytes(), b.capacity);
    }
    // Outputs into an input's buffer go last: another output may still be a view of that input's bytes.
    auto into_input = [&](const void* address) {
      for (const auto& in : s.inputs)
        if (cs.bindings.at(in.name).address == address) return true;
      return false;
    };
    for (const bool last : {false, true})
      for (const auto& d : s.outputs) {
        const Tensor& t = outputs.at(d.name);
        void* dst = bound_output(cs, s, d.name)->second.address;
        if (t.nbytes() && into_input(dst) == last) std::memmove(dst, t.raw(), t.nbytes());
      }
    return Status();
  }

  Result<std::vector<LayerTiming>> profile(ContextState& cs, void*) override {
    const EngineState& s = *cs.engine.state();
    std::map<std::string, Tensor> inputs;
    for (const auto& d : s.inputs) {
      const char* needs = "set_input_shape and set_tensor_address are needed before profiling";
      KILN_ASSIGN_OR_RETURN(const BoundInput in, bound_input(cs, d, needs, needs));
      inputs[d.name] = Tensor::wrap(d.dtype, in.dims, in.address);
    }
    return executor_->profile(inputs);
  }

  const std::map<std::string, std::vector<int64_t>>& last_output_dims(const ContextState& cs) const override {
    return cs.last_output_dims;
  }

  RunInfo last_run_info(const ContextState& cs) const override {
    RunInfo r;
    r.host_nodes = static_cast<int>(cs.engine.info().num_nodes);
    return r;
  }

 private:
  std::shared_ptr<const cpu::GraphExecutor> executor_;
};

}  // namespace

std::unique_ptr<RunBackend> make_cpu_run(const EngineState& s) { return std::make_unique<CpuRun>(s.cpu); }

}  // namespace kiln
