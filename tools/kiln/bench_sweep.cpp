// kiln bench --sweep (see bench_sweep.h).
#include "bench_sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>

#include "bench_report.h"

namespace kiln::cli {

std::vector<SweepPoint> sweep_points(const Engine& e) {
  std::vector<SweepPoint> points;
  const auto& profiles = e.profiles();
  if (profiles.empty()) {
    points.push_back({std::nullopt, "static", {}});
    return points;
  }
  for (size_t k = 0; k < profiles.size(); ++k) {
    const struct {
      const char* name;
      std::vector<int64_t> InputRange::*dims;
    } which[] = {{"min", &InputRange::min}, {"opt", &InputRange::opt}, {"max", &InputRange::max}};
    for (const auto& w : which) {
      SweepPoint p{static_cast<int>(k), w.name, {}};
      for (const auto& [name, range] : profiles[k].inputs) p.shapes[name] = range.*w.dims;
      points.push_back(std::move(p));
    }
  }
  return points;
}

Status check_sweep_options(const BenchOptions& o) {
  std::vector<std::string> clash;
  if (!o.shapes.empty()) clash.push_back("--shapes");
  if (!o.inputs.empty()) clash.push_back("--input");
  if (o.opt_profile_given) clash.push_back("--opt-profile");
  if (o.profile) clash.push_back("--profile");
  if (clash.empty()) return Status();
  return Status(
      StatusCode::kInvalidArgument,
      fmt::format("--sweep runs every profile's min, opt and max shapes with random inputs, so it takes "
                  "no {}; drop {} or drop --sweep to time one shape",
                  fmt::join(clash, ", "), clash.size() > 1 ? "them" : "it"));
}

void print_sweep(const nlohmann::json& rows) {
  if (rows.empty()) return;
  const auto& first = rows.front();
  const auto& e = first["engine"];
  std::cout << fmt::format("engine: {} ({} backend, {}, {} nodes); {} shape(s), {} stream(s), timer {}\n",
                           e["path"].get<std::string>(), e["backend"].get<std::string>(),
                           e["precision"].get<std::string>(), e["nodes"].get<size_t>(), rows.size(),
                           first["streams"].get<size_t>(), first["timer"].get<std::string>());
  auto label = [](const nlohmann::json& r) {
    const auto& p = r["sweep_point"];
    return p["profile"].is_null()
               ? p["point"].get<std::string>()
               : fmt::format("{} {}", p["profile"].get<int>(), p["point"].get<std::string>());
  };
  auto shapes_of = [](const nlohmann::json& r) {
    std::string s;
    for (const auto& [name, dims] : r["shapes"].items())
      s += fmt::format("{}{}={}", s.empty() ? "" : " ", name, dims_str(dims.get<std::vector<int64_t>>()));
    return s;
  };
  size_t shape_w = 6;
  for (const auto& r : rows) shape_w = std::max(shape_w, shapes_of(r).size());
  std::cout << fmt::format("{:<9}  {:<{}}  {:>6}  {:>10}  {:>10}  {:>10}  {:>6}  {:>12}  {:>12}\n", "profile",
                           "shapes", shape_w, "runs", "median ms", "p95 ms", "p99 ms", "cv", "inferences/s",
                           "samples/s");
  for (const auto& r : rows) {
    const auto& l = r["latency_ms"];
    const auto& t = r["throughput"];
    std::cout << fmt::format(
        "{:<9}  {:<{}}  {:>6}  {:>10.4f}  {:>10.4f}  {:>10.4f}  {:>5.1f}%  {:>12.1f}  {:>12.1f}\n", label(r),
        shapes_of(r), shape_w, r["iterations"].get<size_t>(), l["median"].get<double>(),
        l["p95"].get<double>(), l["p99"].get<double>(), 100 * l["cv"].get<double>(),
        t["inferences_per_s"].get<double>(), t["samples_per_s"].get<double>());
  }
  // Each row's findings, then what to do about each kind once.
  std::map<std::string, std::string> advice;
  for (const auto& r : rows) {
    print_warnings(r, r["sweep_point"]["profile"].is_null() ? "static dims: " : "profile " + label(r) + ": ",
                   false);
    for (const auto& w : r["warnings"]) advice[w["kind"].get<std::string>()] = w["advice"].get<std::string>();
  }
  for (const auto& [kind, what] : advice) std::cout << fmt::format("what to do ({}): {}\n", kind, what);
}

}  // namespace kiln::cli
