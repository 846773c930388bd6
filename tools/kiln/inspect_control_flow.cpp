#include "inspect_control_flow.h"

#include <fmt/format.h>

#include <iostream>

namespace kiln::cli {

void print_control_flow(const nlohmann::json& entries) {
  if (entries.empty()) return;
  std::cout << fmt::format("  control flow: {} node(s)\n", entries.size());
  for (const auto& e : entries)
    std::cout << fmt::format("    {} '{}': {}: {}\n", e["op"].get<std::string>(), e["node"].get<std::string>(),
                             e["case"].get<std::string>(), e["detail"].get<std::string>());
}

}  // namespace kiln::cli
