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

class ExecutionContext {
 public:
  ExecutionContext(ExecutionContext&&) noexcept;
  ExecutionContext& operator=(ExecutionContext&&) noexcept;
  ~ExecutionContext();

  // Selects the optimization profile that shapes are checked against.
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
  // Convenience: host arrays in, host arrays out. Shapes are taken from the tensors.
  Result<std::map<std::string, Tensor>> infer(const std::map<std::string, Tensor>& inputs);

  const Engine& engine() const;

  explicit ExecutionContext(std::unique_ptr<ContextState> state);

 private:
  std::unique_ptr<ContextState> state_;
};

}  // namespace kiln
