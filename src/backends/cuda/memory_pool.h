// Per-context caching allocator: cudaMalloc only when the pool has no block of the size class, so steady-state
// runs at the same shapes allocate nothing. Blocks return to the pool when their last DeviceTensor goes.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "kiln/status.h"

namespace kiln::cuda {

class MemoryPool : public std::enable_shared_from_this<MemoryPool> {
 public:
  // limit_bytes: cap on bytes held (0 = no cap); an allocation past it, or one the GPU cannot serve even after
  // the idle blocks are given back, fails with kOutOfMemory and a message saying how much was free.
  explicit MemoryPool(size_t limit_bytes = 0) : limit_(limit_bytes) {}
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  Result<std::shared_ptr<void>> allocate(size_t bytes);
  size_t bytes_held() const { return held_; }
  void set_limit(size_t limit_bytes) { limit_ = limit_bytes; }
  // Returns idle blocks to the driver (cudaFree); blocks in use stay.
  void trim();
  size_t peak_bytes() const { return peak_; }

 private:
  static size_t size_class(size_t bytes);
  void release(void* p, size_t cls);
  bool has_idle_blocks();

  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  size_t held_ = 0, peak_ = 0, limit_ = 0;
};

}  // namespace kiln::cuda
