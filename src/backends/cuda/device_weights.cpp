#include "backends/cuda/device_weights.h"

#include <cuda_runtime.h>

#include <fmt/format.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/device_alloc.h"
#include "util/error.h"

namespace kiln::cuda {

namespace {
constexpr size_t kAlign = 256;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
}  // namespace

const DeviceTensor* DeviceWeightPool::find(const void* host, size_t nbytes) const {
  auto it = uploaded_.find({host, nbytes});
  return it == uploaded_.end() ? nullptr : &it->second;
}

void DeviceWeightPool::add(const void* host, size_t nbytes, DeviceTensor device) {
  uploaded_.emplace(std::make_pair(host, nbytes), std::move(device));
}

Result<std::shared_ptr<const DeviceWeights>> DeviceWeights::upload(const ir::Graph& g, DeviceWeightPool* pool) {
  std::unique_lock<std::mutex> lock;
  if (pool) lock = std::unique_lock<std::mutex>(pool->mutex());
  auto shared = [&](const Tensor& t) { return pool && t.nbytes() ? pool->find(t.raw(), t.nbytes()) : nullptr; };
  auto w = std::make_shared<DeviceWeights>();
  size_t total = 0, count = 0;
  for (const auto& [name, t] : g.initializers)
    if (!shared(t)) {
      total += align_up(std::max<size_t>(t.nbytes(), 1));
      ++count;
    }
  void* base = nullptr;
  if (total) {
    KILN_RETURN_IF_ERROR(device_alloc(&base, total, fmt::format("the engine's weights ({} tensors)", count)));
  }
  w->block_ = std::shared_ptr<void>(base, [](void* p) {
    if (p) cudaFree(p);
  });
  w->bytes_ = total;
  size_t offset = 0;
  for (const auto& [name, t] : g.initializers) {
    if (const DeviceTensor* d = shared(t)) {
      w->tensors_[name] = DeviceTensor{t.dtype(), t.dims(), d->data, d->storage};
      continue;
    }
    char* p = static_cast<char*>(base) + offset;
    if (t.nbytes()) KILN_CUDA_CHECK(cudaMemcpy(p, t.raw(), t.nbytes(), cudaMemcpyHostToDevice));
    w->tensors_[name] = DeviceTensor{t.dtype(), t.dims(), p, w->block_};
    if (pool && t.nbytes()) pool->add(t.raw(), t.nbytes(), w->tensors_[name]);
    offset += align_up(std::max<size_t>(t.nbytes(), 1));
  }
  return std::shared_ptr<const DeviceWeights>(std::move(w));
}

const DeviceTensor* DeviceWeights::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Result<std::shared_ptr<const DeviceWeights>> SharedDeviceWeights::get(const ir::Graph& g) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!weights_) {
    KILN_ASSIGN_OR_RETURN(weights_, DeviceWeights::upload(g, pool_.get()));
  }
  return weights_;
}

}  // namespace kiln::cuda
