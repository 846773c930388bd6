// An engine's constants on the GPU: uploaded once, in one allocation, and shared read-only by every context
// (and thread) of the engine, so N contexts cost one copy of the weights.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "backends/cuda/device_tensor.h"
#include "ir/graph.h"

namespace kiln::cuda {

class DeviceWeights {
 public:
  // Uploads every initializer of g (synchronously: the weights are ready when this returns).
  static Result<std::shared_ptr<const DeviceWeights>> upload(const ir::Graph& g);
  const DeviceTensor* find(const std::string& name) const;
  size_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<void> block_;
  std::map<std::string, DeviceTensor> tensors_;
  size_t bytes_ = 0;
};

// Uploads on first use; thread-safe. Held by the engine so every context shares the one upload.
class SharedDeviceWeights {
 public:
  Result<std::shared_ptr<const DeviceWeights>> get(const ir::Graph& g);

 private:
  std::mutex mu_;
  std::shared_ptr<const DeviceWeights> weights_;
};

}  // namespace kiln::cuda
