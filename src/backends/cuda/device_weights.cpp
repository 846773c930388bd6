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

Result<std::shared_ptr<const DeviceWeights>> DeviceWeights::upload(const ir::Graph& g) {
  auto w = std::make_shared<DeviceWeights>();
  size_t total = 0;
  for (const auto& [name, t] : g.initializers) total += align_up(std::max<size_t>(t.nbytes(), 1));
  void* base = nullptr;
  if (total) {
    KILN_RETURN_IF_ERROR(
        device_alloc(&base, total, fmt::format("the engine's weights ({} tensors)", g.initializers.size())));
  }
  w->block_ = std::shared_ptr<void>(base, [](void* p) {
    if (p) cudaFree(p);
  });
  w->bytes_ = total;
  size_t offset = 0;
  for (const auto& [name, t] : g.initializers) {
    char* p = static_cast<char*>(base) + offset;
    if (t.nbytes()) KILN_CUDA_CHECK(cudaMemcpy(p, t.raw(), t.nbytes(), cudaMemcpyHostToDevice));
    w->tensors_[name] = DeviceTensor{t.dtype(), t.dims(), p, w->block_};
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
    KILN_ASSIGN_OR_RETURN(weights_, DeviceWeights::upload(g));
  }
  return weights_;
}

}  // namespace kiln::cuda
