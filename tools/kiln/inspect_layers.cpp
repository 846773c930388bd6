#include "inspect_layers.h"

#include <fmt/format.h>

#include <iostream>

#include "cli_common.h"

namespace kiln::cli {

namespace {

std::string mib(size_t bytes) { return fmt::format("{:.2f} MiB", bytes / 1048576.0); }

}  // namespace

void print_layers(const nlohmann::json& layers, const nlohmann::json& unmapped) {
  size_t wn = 4, wo = 2, wd = 5, ws = 5;
  for (const auto& l : layers) {
    wn = std::max(wn, l["name"].get<std::string>().size());
    wo = std::max(wo, l["op"].get<std::string>().size());
    wd = std::max(wd, l["dtype"].get<std::string>().size());
    ws = std::max(ws, l["shape"].get<std::string>().size());
  }
  wn = std::min<size_t>(wn, 48);
  std::cout << fmt::format("  layers after fusion ({}):\n", layers.size());
  std::cout << fmt::format("    {:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", "name", wn, "op", wo, "dtype", wd, "shape", ws,
                           "tactic");
  for (const auto& l : layers) {
    std::string tactic = l["tactic"].is_null() ? "-" : l["tactic"].get<std::string>();
    if (l.contains("ms")) tactic = fmt::format("{:.4f} ms  {}", l["ms"].get<double>(), tactic);
    std::cout << fmt::format("    {:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", l["name"].get<std::string>(), wn,
                             l["op"].get<std::string>(), wo, l["dtype"].get<std::string>(), wd,
                             l["shape"].get<std::string>(), ws, tactic);
  }
  if (!unmapped.empty()) {
    std::cout << fmt::format("  {} stored tactic choice(s) match no layer's static geometry:\n", unmapped.size());
    for (const auto& t : unmapped)
      std::cout << fmt::format("    {} {}: {}\n", t["kind"].get<std::string>(), t["problem"].get<std::string>(),
                               t["choice"].get<std::string>());
  }
}

void print_memory_plan(const nlohmann::json& m) {
  std::cout << fmt::format("  memory plan: weights {} ({} bytes); activation arena estimated on the host (values "
                           "packed by lifetime, kernel scratch not counted):\n",
                           mib(m["weight_bytes"].get<size_t>()), m["weight_bytes"].get<size_t>());
  for (const auto& p : m["points"]) {
    std::string at = p.contains("profile") ? fmt::format("profile {} {}", p["profile"].get<size_t>(),
                                                         p["point"].get<std::string>())
                                           : p["point"].get<std::string>();
    if (p.contains("dims"))
      for (const auto& [name, d] : p["dims"].items())
        at += fmt::format(" {}={}", name, dims_to_string(d.get<std::vector<int64_t>>()));
    if (p.contains("error")) {
      std::cout << fmt::format("    {}: not estimated: {}\n", at, p["error"].get<std::string>());
      continue;
    }
    std::cout << fmt::format("    {}: arena {} ({} values, {} without reuse; largest '{}' {})\n", at,
                             mib(p["arena_bytes"].get<size_t>()), p["values"].get<size_t>(),
                             mib(p["total_bytes"].get<size_t>()), p["largest"]["name"].get<std::string>(),
                             mib(p["largest"]["bytes"].get<size_t>()));
    if (!p["unsized"].empty())
      std::cout << fmt::format("      {} value(s) sized by data not counted (first: '{}')\n", p["unsized"].size(),
                               p["unsized"][0].get<std::string>());
  }
}

}  // namespace kiln::cli
