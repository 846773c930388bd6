// Summary statistics of timed iterations for kiln bench (latency percentiles, per-layer medians) and the
// rules that turn them into warnings (an unstable run, an enqueue-bound one).
#pragma once
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::cli {

struct Stats {
  double median = 0, mean = 0, p90 = 0, p95 = 0, p99 = 0, min = 0, max = 0;
  double stddev = 0;  // sample standard deviation (n - 1); 0 for fewer than two values
  double cv = 0;      // stddev / mean: the coefficient of variation, as a fraction
  size_t count = 0;
};

// Nearest-rank percentiles over the timed iterations.
inline Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto pct = [&](double q) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
  };
  const size_t n = v.size();
  s.count = n;
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(n);
  if (n > 1) {
    double sq = 0;
    for (double x : v) sq += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(sq / static_cast<double>(n - 1));
  }
  s.cv = s.mean > 0 ? s.stddev / s.mean : 0.0;
  s.p90 = pct(0.90);
  s.p95 = pct(0.95);
  s.p99 = pct(0.99);
  s.min = v.front();
  s.max = v.back();
  return s;
}

inline nlohmann::json stats_json(const Stats& s) {
  return {{"median", s.median}, {"mean", s.mean}, {"p90", s.p90},       {"p95", s.p95}, {"p99", s.p99},
          {"min", s.min},       {"max", s.max},   {"stddev", s.stddev}, {"cv", s.cv}};
}

// Over this coefficient of variation the median is not a number to compare runs by: something else shared
// the machine, clocks moved, or the run was too short to settle.
inline constexpr double kDefaultCvLimit = 0.025;
// The host is the bottleneck once enqueuing a run takes this share of the GPU's time for it: the GPU then
// idles between runs, and a faster kernel would not make the engine faster.
inline constexpr double kEnqueueBoundShare = 0.8;

struct BenchWarning {
  std::string kind;     // "unstable" or "enqueue_bound"
  std::string message;  // what was measured
  std::string advice;   // what to do about it
};

// latency: the timed runs; cv_limit: a fraction (0.025 for 2.5 %).
inline std::vector<BenchWarning> stability_warnings(const Stats& latency, double cv_limit) {
  if (latency.count < 2 || !(latency.cv > cv_limit)) return {};
  return {
      {"unstable",
       fmt::format("unstable run: latency varies by {:.1f}% (coefficient of variation over {} runs; limit "
                   "{:.1f}%); median {:.4f} ms, min {:.4f}, max {:.4f}",
                   100 * latency.cv, latency.count, 100 * cv_limit, latency.median, latency.min, latency.max),
       "close other work on the machine, run longer (--duration, --warmup) or pin clocks before comparing "
       "numbers"}};
}

// enqueue: host time inside ExecutionContext::enqueue; gpu: the GPU's time for the same runs (CUDA events).
inline std::vector<BenchWarning> enqueue_warnings(const Stats& enqueue, const Stats& gpu) {
  if (enqueue.count == 0 || gpu.count == 0 || !(enqueue.median >= kEnqueueBoundShare * gpu.median)) return {};
  return {
      {"enqueue_bound",
       fmt::format("enqueue-bound: the host takes {:.4f} ms (median) to enqueue a run the GPU computes in "
                   "{:.4f} ms, so the GPU waits on the host",
                   enqueue.median, gpu.median),
       "keep CUDA graphs on (no --no-cuda-graph), use a larger batch, or run more streams (--streams)"}};
}

}  // namespace kiln::cli
