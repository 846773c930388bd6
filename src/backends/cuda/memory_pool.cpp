#include "backends/cuda/memory_pool.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include "backends/cuda/device_alloc.h"

namespace kiln::cuda {

size_t MemoryPool::size_class(size_t bytes) {
  if (bytes <= 512) return 512;
  // Round up to 1/8 of the next power of two: at most 12.5% slack, few distinct classes.
  size_t p = 1;
  while (p < bytes) p <<= 1;
  size_t step = std::max<size_t>(p / 8, 512);
  return (bytes + step - 1) / step * step;
}

Result<std::shared_ptr<void>> MemoryPool::allocate(size_t bytes) {
  const size_t cls = size_class(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(cls);
    if (it != free_.end()) {
      p = it->second;
      free_.erase(it);
    }
  }
  if (!p) {
    if (limit_ && held_ + cls > limit_)
      return Status(StatusCode::kOutOfMemory,
                    fmt::format("GPU memory cap reached: {} bytes held, {} more requested, cap {} bytes; raise the cap "
                                "or use smaller shapes",
                                held_, cls, limit_));
    const std::string what = fmt::format("a {}-byte block for intermediate tensors", cls);
    Status st = device_alloc(&p, cls, what);
    // Idle blocks of other sizes may be what the GPU lacks: give them back and try once more.
    if (st.code() == StatusCode::kOutOfMemory && has_idle_blocks()) {
      trim();
      st = device_alloc(&p, cls, what);
    }
    if (!st.ok()) return st;
    std::lock_guard<std::mutex> lock(mu_);
    held_ += cls;
    peak_ = std::max(peak_, held_);
  }
  std::weak_ptr<MemoryPool> self = weak_from_this();
  return std::shared_ptr<void>(p, [self, cls](void* q) {
    if (auto pool = self.lock()) pool->release(q, cls);
    else cudaFree(q);
  });
}

bool MemoryPool::has_idle_blocks() {
  std::lock_guard<std::mutex> lock(mu_);
  return !free_.empty();
}

void MemoryPool::release(void* p, size_t cls) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.emplace(cls, p);
}

void MemoryPool::trim() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [cls, p] : free_) {
    cudaFree(p);
    held_ -= cls;
  }
  free_.clear();
}

MemoryPool::~MemoryPool() {
  for (auto& [cls, p] : free_) cudaFree(p);
}

}  // namespace kiln::cuda
