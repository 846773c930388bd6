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

// Device copies of host weights, by host storage: the members of an engine bundle share host tensors whose bytes
// are equal (TensorPool), and through this the device copy too. Thread-safe.
class DeviceWeightPool {
 public:
  std::mutex& mutex() { return mu_; }
  // Under mutex(): the device copy of the host bytes at `host` (nbytes long), if uploaded.
  const DeviceTensor* find(const void* host, size_t nbytes) const;
  void add(const void* host, size_t nbytes, DeviceTensor device);

 private:
  std::mutex mu_;
  std::map<std::pair<const void*, size_t>, DeviceTensor> uploaded_;
};

class DeviceWeights {
 public:
  // Uploads every initializer of g (synchronously: the weights are ready when this returns). With a pool, a
  // tensor already uploaded through it is shared, not uploaded again.
  static Result<std::shared_ptr<const DeviceWeights>> upload(const ir::Graph& g, DeviceWeightPool* pool = nullptr);
  const DeviceTensor* find(const std::string& name) const;
  size_t bytes() const { return bytes_; }  // bytes this upload allocated (not those shared from a pool)

 private:
  std::shared_ptr<void> block_;
  std::map<std::string, DeviceTensor> tensors_;
  size_t bytes_ = 0;
};

// Uploads on first use; thread-safe. Held by the engine so every context shares the one upload.
class SharedDeviceWeights {
 public:
  explicit SharedDeviceWeights(std::shared_ptr<DeviceWeightPool> pool = nullptr) : pool_(std::move(pool)) {}
  Result<std::shared_ptr<const DeviceWeights>> get(const ir::Graph& g);

 private:
  std::shared_ptr<DeviceWeightPool> pool_;
  std::mutex mu_;
  std::shared_ptr<const DeviceWeights> weights_;
};

}  // namespace kiln::cuda
