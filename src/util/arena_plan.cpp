#include "util/arena_plan.h"

#include <algorithm>
#include <numeric>

#include "util/checked_math.h"

namespace kiln {

ArenaLayout pack_by_lifetime(const std::vector<LifetimeBlock>& blocks, size_t alignment) {
  // Sizes and offsets saturate at SIZE_MAX instead of wrapping: an arena that large fails to allocate with a
  // message, where a wrapped total would be a small arena that blocks overrun.
  auto sat_add = [](size_t a, size_t b) { return checked_add(a, b).value_or(SIZE_MAX); };
  auto align = [&](size_t v) {
    const size_t up = sat_add(v, alignment - 1);
    return up == SIZE_MAX ? SIZE_MAX : up / alignment * alignment;
  };
  std::vector<size_t> order(blocks.size());
  std::iota(order.begin(), order.end(), 0);
  // Big blocks first leaves the small ones to fill the gaps; ties by birth keep the layout deterministic.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (blocks[a].bytes != blocks[b].bytes) return blocks[a].bytes > blocks[b].bytes;
    return blocks[a].first < blocks[b].first;
  });
  ArenaLayout layout;
  layout.offsets.assign(blocks.size(), 0);
  std::vector<size_t> placed;
  for (size_t i : order) {
    const LifetimeBlock& b = blocks[i];
    const size_t size = align(std::max<size_t>(b.bytes, 1));
    // Ranges taken by blocks alive at the same time as b, by offset.
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t j : placed) {
      const LifetimeBlock& o = blocks[j];
      if (o.first < b.last && b.first < o.last)
        busy.emplace_back(layout.offsets[j], sat_add(layout.offsets[j], align(std::max<size_t>(o.bytes, 1))));
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (sat_add(offset, size) <= lo) break;
      offset = std::max(offset, hi);
    }
    layout.offsets[i] = offset;
    layout.total = std::max(layout.total, sat_add(offset, size));
    placed.push_back(i);
  }
  return layout;
}

size_t AllocationTrace::on_alloc(size_t bytes) {
  blocks_.push_back({bytes, tick_++, -1});
  freed_.push_back(false);
  return blocks_.size() - 1;
}

void AllocationTrace::on_free(size_t id) {
  if (id >= blocks_.size() || freed_[id]) return;
  blocks_[id].last = tick_++;
  freed_[id] = true;
}

std::vector<LifetimeBlock> AllocationTrace::blocks() const {
  std::vector<LifetimeBlock> out = blocks_;
  for (size_t i = 0; i < out.size(); ++i)
    if (!freed_[i]) out[i].last = tick_ + 1;
  return out;
}

}  // namespace kiln
