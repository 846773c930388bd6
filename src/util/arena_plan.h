// Activation memory planned by lifetime: a trace run records every allocation's size and when it was freed;
// pack_by_lifetime then places all of them in one arena so that blocks alive at the same time never overlap.
// Host-only logic (the CUDA executor owns the device arena), so it is tested on any machine.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln {

struct LifetimeBlock {
  size_t bytes = 0;
  int64_t first = 0;  // allocated at this tick
  int64_t last = 0;   // freed at this tick (exclusive end of life)
};

struct ArenaLayout {
  std::vector<size_t> offsets;  // one per block, aligned
  size_t total = 0;             // arena size
};

// Largest blocks first, each at the lowest aligned offset that overlaps no block alive at the same time.
ArenaLayout pack_by_lifetime(const std::vector<LifetimeBlock>& blocks, size_t alignment = 256);

// Collects the blocks of a trace run. Ticks advance on every allocation and free.
class AllocationTrace {
 public:
  size_t on_alloc(size_t bytes);  // returns the block's id
  void on_free(size_t id);
  // Blocks still alive are treated as living to the end of the run.
  std::vector<LifetimeBlock> blocks() const;
  size_t count() const { return blocks_.size(); }

 private:
  int64_t tick_ = 0;
  std::vector<LifetimeBlock> blocks_;
  std::vector<bool> freed_;
};

}  // namespace kiln
