// Summary statistics of timed iterations for kiln bench (latency percentiles, per-layer medians).
#pragma once
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

namespace kiln::cli {

struct Stats {
  double median = 0, mean = 0, p90 = 0, p99 = 0, min = 0, max = 0;
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
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(n);
  s.p90 = pct(0.90);
  s.p99 = pct(0.99);
  s.min = v.front();
  s.max = v.back();
  return s;
}

inline nlohmann::json stats_json(const Stats& s) {
  return {{"median", s.median}, {"mean", s.mean}, {"p90", s.p90},
          {"p99", s.p99},       {"min", s.min},   {"max", s.max}};
}

}  // namespace kiln::cli
