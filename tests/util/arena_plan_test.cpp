// The activation arena planner: blocks alive together never overlap, dead blocks' space is reused, and the
// result never exceeds the sum of the blocks.
#include "util/arena_plan.h"

#include <gtest/gtest.h>

#include <random>

namespace kiln {
namespace {

void expect_no_overlap(const std::vector<LifetimeBlock>& b, const ArenaLayout& l) {
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(l.offsets[i] % 256, 0u);
    EXPECT_LE(l.offsets[i] + b[i].bytes, l.total);
    for (size_t j = i + 1; j < b.size(); ++j) {
      const bool together = b[i].first < b[j].last && b[j].first < b[i].last;
      const bool apart = l.offsets[i] + b[i].bytes <= l.offsets[j] || l.offsets[j] + b[j].bytes <= l.offsets[i];
      EXPECT_TRUE(!together || apart) << "blocks " << i << " and " << j << " overlap while both alive";
    }
  }
}

TEST(ArenaPlan, ChainReusesMemory) {
  // A chain a -> b -> c: a dies when c is born, so c takes a's place.
  std::vector<LifetimeBlock> b = {{1000, 0, 3}, {1000, 1, 5}, {1000, 4, 6}};
  ArenaLayout l = pack_by_lifetime(b);
  expect_no_overlap(b, l);
  EXPECT_EQ(l.total, 2 * 1024u);
  EXPECT_EQ(l.offsets[0], l.offsets[2]);
}

TEST(ArenaPlan, RandomLifetimesNeverOverlap) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<LifetimeBlock> b;
    size_t sum = 0;
    for (int i = 0; i < 60; ++i) {
      int64_t first = rng() % 100, len = 1 + rng() % 30;
      size_t bytes = 1 + rng() % 100000;
      b.push_back({bytes, first, first + len});
      sum += (bytes + 255) / 256 * 256;
    }
    ArenaLayout l = pack_by_lifetime(b);
    expect_no_overlap(b, l);
    EXPECT_LE(l.total, sum);
  }
}

TEST(ArenaPlan, TraceRecordsLifetimes) {
  AllocationTrace t;
  size_t a = t.on_alloc(10), b = t.on_alloc(20);
  t.on_free(a);
  t.on_free(a);  // a second free of the same block is ignored
  size_t c = t.on_alloc(30);
  auto blocks = t.blocks();
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_LT(blocks[a].last, blocks[c].first);     // c may reuse a's space
  EXPECT_GT(blocks[b].last, blocks[c].first);     // b, never freed, lives to the end
  EXPECT_EQ(pack_by_lifetime(blocks).offsets[a], pack_by_lifetime(blocks).offsets[c]);
}

TEST(ArenaPlan, EmptyAndZeroSized) {
  EXPECT_EQ(pack_by_lifetime({}).total, 0u);
  ArenaLayout l = pack_by_lifetime({{0, 0, 1}, {0, 0, 1}});
  EXPECT_NE(l.offsets[0], l.offsets[1]);  // even empty tensors get distinct addresses
}

// Two live blocks whose sizes sum past 2^64: the total saturates, so allocating the arena fails, where a wrapped
// total would be a small arena both blocks overrun.
TEST(ArenaPlan, TotalSaturatesInsteadOfWrapping) {
  const size_t half = (size_t{1} << 63) + 256;
  ArenaLayout l = pack_by_lifetime({{half, 0, 2}, {half, 1, 3}});
  EXPECT_EQ(l.total, SIZE_MAX);
  EXPECT_EQ(pack_by_lifetime({{SIZE_MAX - 3, 0, 1}}).total, SIZE_MAX);
}

}  // namespace
}  // namespace kiln
