// kiln inspect --layers, as text: the layers after fusion and the memory plan from kiln::inspect_json's
// "layers", "tactics_unmapped" and "memory".
#pragma once
#include <nlohmann/json.hpp>

namespace kiln::cli {

void print_layers(const nlohmann::json& layers, const nlohmann::json& unmapped);
void print_memory_plan(const nlohmann::json& m);

}  // namespace kiln::cli
