// kiln bench --profile (see bench_profile.h).
#include "bench_profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <string>

#include "bench_stats.h"

namespace kiln::cli {

namespace {

std::string clip(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return "..." + s.substr(s.size() - (n - 3));  // node names differ at the end (".../layer.11/attn/MatMul_3")
}

}  // namespace


// profile_layers() times one run; the median of several per layer is steadier. Runs list layers in execution
// order, so they line up by index (a run that differs in length is a bug worth reporting, not averaging
// over).
Result<std::vector<LayerTiming>> profile_median(ExecutionContext& ctx, void* stream, int runs) {
  std::vector<std::vector<LayerTiming>> all;
  for (int r = 0; r < runs; ++r) {
    auto layers = ctx.profile_layers(stream);
    if (!layers.ok()) return layers.status().with_context("profiling layers");
    if (!all.empty() && layers->size() != all.front().size())
      return Status(StatusCode::kInternal, fmt::format("profile run {} reported {} layers, run 0 reported {}",
                                                       r, layers->size(), all.front().size()));
    all.push_back(std::move(*layers));
  }
  std::vector<LayerTiming> med = all.front();
  for (size_t i = 0; i < med.size(); ++i) {
    std::vector<double> v;
    for (const auto& run : all) v.push_back(run[i].ms);
    med[i].ms = stats_of(v).median;
  }
  return med;
}

nlohmann::json profile_json(std::vector<LayerTiming> all, int runs) {
  // Host shape math runs once when a CUDA graph is captured, not in a replay: reported apart from the layers.
  std::vector<LayerTiming> layers;
  double total = 0, host_ms = 0;
  int host_layers = 0;
  for (auto& l : all) {
    if (l.placement == "host") {
      host_ms += l.ms;
      ++host_layers;
    } else {
      total += l.ms;
      layers.push_back(std::move(l));
    }
  }
  std::stable_sort(layers.begin(), layers.end(),
                   [](const LayerTiming& a, const LayerTiming& b) { return a.ms > b.ms; });
  nlohmann::json j = {{"runs", runs},
                      {"total_ms", total},
                      {"host_shape_math", {{"layers", host_layers}, {"ms", host_ms}}},
                      {"layers", nlohmann::json::array()},
                      {"ops", nlohmann::json::array()}};
  double cum = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    cum += l.ms;
    j["layers"].push_back({{"rank", i + 1},
                           {"name", l.name},
                           {"op", l.op},
                           {"placement", l.placement},
                           {"tactic", l.tactic},
                           {"ms", l.ms},
                           {"share", total > 0 ? l.ms / total : 0.0},
                           {"cumulative", total > 0 ? cum / total : 0.0}});
  }
  std::map<std::string, std::pair<int, double>> ops;
  for (const auto& l : layers) {
    ops[l.op].first += 1;
    ops[l.op].second += l.ms;
  }
  std::vector<std::pair<std::string, std::pair<int, double>>> sorted(ops.begin(), ops.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
  for (const auto& [op, cm] : sorted)
    j["ops"].push_back(
        {{"op", op}, {"count", cm.first}, {"ms", cm.second}, {"share", total > 0 ? cm.second / total : 0.0}});
  return j;
}

void print_profile(const nlohmann::json& p, int top) {
  const auto& layers = p["layers"];
  std::cout << fmt::format(
      "\nper-layer profile (median of {} run(s) node by node, without CUDA graphs; layer sum {:.3f} ms), top {} of "
      "{}:\n",
      p["runs"].get<int>(), p["total_ms"].get<double>(), std::min<size_t>(top, layers.size()), layers.size());
  if (p["host_shape_math"]["layers"].get<int>() > 0)
    std::cout << fmt::format("(not listed: {} host shape-math nodes, {:.3f} ms of CPU time that a CUDA graph replay "
                             "does not repeat)\n",
                             p["host_shape_math"]["layers"].get<int>(), p["host_shape_math"]["ms"].get<double>());
  // The tactic goes last and whole: its start names the path (e.g. "cudnn graph engine 7" vs "cudnn
  // conv_bias_act"), which a clipped column hid.
  std::cout << fmt::format("{:>4}  {:<48}  {:<20}  {:<12}  {:>9}  {:>6}  {:>6}  {}\n", "rank", "name", "op",
                           "placement", "ms", "share", "cum", "tactic");
  for (size_t i = 0; i < layers.size() && i < static_cast<size_t>(top); ++i) {
    const auto& l = layers[i];
    std::cout << fmt::format("{:>4}  {:<48}  {:<20}  {:<12}  {:>9.4f}  {:>5.1f}%  {:>5.1f}%  {}\n",
                             l["rank"].get<size_t>(), clip(l["name"].get<std::string>(), 48),
                             clip(l["op"].get<std::string>(), 20), l["placement"].get<std::string>(),
                             l["ms"].get<double>(), 100 * l["share"].get<double>(),
                             100 * l["cumulative"].get<double>(), l["tactic"].get<std::string>());
  }
  std::cout << fmt::format("\nper op type:\n{:<24}  {:>6}  {:>10}  {:>6}\n", "op", "count", "ms", "share");
  for (const auto& o : p["ops"])
    std::cout << fmt::format("{:<24}  {:>6}  {:>10.4f}  {:>5.1f}%\n", clip(o["op"].get<std::string>(), 24),
                             o["count"].get<int>(), o["ms"].get<double>(), 100 * o["share"].get<double>());
}

}  // namespace kiln::cli
