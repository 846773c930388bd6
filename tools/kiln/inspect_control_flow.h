// kiln inspect, as text: what became of each If, Loop and Scan (kiln::inspect_json's "control_flow").
#pragma once
#include <nlohmann/json.hpp>

namespace kiln::cli {

void print_control_flow(const nlohmann::json& entries);

}  // namespace kiln::cli
