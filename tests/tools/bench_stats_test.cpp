// kiln bench's statistics and the rules that turn them into warnings (tools/kiln/bench_stats.h).
#include "bench_stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln::cli {
namespace {

std::vector<double> one_to(int n) {
  std::vector<double> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 1.0);
  return v;
}

TEST(BenchStats, NearestRankPercentilesIncludingP95) {
  // 1..100 shuffled order must not matter: nearest rank of q is the ceil(q * n)-th smallest.
  std::vector<double> v = one_to(100);
  std::reverse(v.begin(), v.end());
  const Stats s = stats_of(v);
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.median, 50.5);
  EXPECT_DOUBLE_EQ(s.p90, 90);
  EXPECT_DOUBLE_EQ(s.p95, 95);
  EXPECT_DOUBLE_EQ(s.p99, 99);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 100);
  // Twenty runs: p95 is the 19th, p99 the 20th.
  const Stats t = stats_of(one_to(20));
  EXPECT_DOUBLE_EQ(t.p95, 19);
  EXPECT_DOUBLE_EQ(t.p99, 20);
  EXPECT_LE(t.median, t.p95);
}

TEST(BenchStats, StandardDeviationAndCoefficientOfVariation) {
  // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squared deviations 32, sample variance 32 / 7.
  const Stats s = stats_of({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_NEAR(s.stddev, std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_NEAR(s.cv, std::sqrt(32.0 / 7.0) / 5.0, 1e-12);
  // One run has no spread; identical runs neither.
  EXPECT_EQ(stats_of({3.0}).stddev, 0);
  EXPECT_EQ(stats_of({3.0}).cv, 0);
  EXPECT_EQ(stats_of({2.0, 2.0, 2.0}).cv, 0);
  EXPECT_EQ(stats_of({}).count, 0u);
}

TEST(BenchStats, JsonHasEveryField) {
  const auto j = stats_json(stats_of({1, 2, 3}));
  for (const char* k : {"median", "mean", "p90", "p95", "p99", "min", "max", "stddev", "cv"})
    EXPECT_TRUE(j.contains(k)) << k;
}

// Latencies with a chosen coefficient of variation: mean 10, two values 10 - d and 10 + d repeated, so the
// sample stddev is d * sqrt(n / (n - 1)).
Stats spread(double d, int pairs) {
  std::vector<double> v;
  for (int i = 0; i < pairs; ++i) {
    v.push_back(10 - d);
    v.push_back(10 + d);
  }
  return stats_of(v);
}

TEST(BenchStats, UnstableOverTheLimitOnly) {
  const Stats calm = spread(0.2, 50);   // cv about 2.0 %
  const Stats noisy = spread(0.3, 50);  // cv about 3.0 %
  ASSERT_LT(calm.cv, kDefaultCvLimit);
  ASSERT_GT(noisy.cv, kDefaultCvLimit);
  EXPECT_TRUE(stability_warnings(calm, kDefaultCvLimit).empty());
  const auto w = stability_warnings(noisy, kDefaultCvLimit);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].kind, "unstable");
  EXPECT_NE(w[0].message.find("3.0%"), std::string::npos) << w[0].message;
  EXPECT_NE(w[0].message.find("limit 2.5%"), std::string::npos) << w[0].message;
  EXPECT_NE(w[0].advice.find("--duration"), std::string::npos) << w[0].advice;
  // A limit of 0 flags any spread, but a single run or identical runs are never unstable.
  EXPECT_EQ(stability_warnings(calm, 0).size(), 1u);
  EXPECT_TRUE(stability_warnings(stats_of({5.0}), 0).empty());
  EXPECT_TRUE(stability_warnings(stats_of({5.0, 5.0}), 0).empty());
}

TEST(BenchStats, EnqueueBoundWhenHostTimeNearsGpuTime) {
  const Stats gpu = stats_of({1.0, 1.0, 1.0});
  EXPECT_TRUE(enqueue_warnings(stats_of({0.1, 0.1}), gpu).empty());
  EXPECT_TRUE(enqueue_warnings(stats_of({0.79, 0.79}), gpu).empty());
  const auto near = enqueue_warnings(stats_of({0.8, 0.8}), gpu);
  ASSERT_EQ(near.size(), 1u);
  EXPECT_EQ(near[0].kind, "enqueue_bound");
  EXPECT_NE(near[0].advice.find("CUDA graphs"), std::string::npos) << near[0].advice;
  EXPECT_EQ(enqueue_warnings(stats_of({2.5}), gpu).size(), 1u);
  // No enqueue times (a CPU engine): nothing to say.
  EXPECT_TRUE(enqueue_warnings(stats_of({}), gpu).empty());
}

}  // namespace
}  // namespace kiln::cli
