#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

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
};

}  // namespace kiln
