#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/device_tensor.h"
#include "kiln/engine.h"
#include "runtime/engine_state.h"

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
};

}  // namespace kiln
