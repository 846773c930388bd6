// kiln inspect --layers: the layers after fusion (op, precision, symbolic output shape, tactic) and the memory
// plan (weights; the activation arena at each profile's min/opt/max, estimated on the host), as JSON and text.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/kiln.h"
#include "viz/layer_graph.h"

namespace kiln::cli {

// The layer graph with each layer's tactic: the engine's stored choices mapped to layers (see
// runtime/tactic_map.h), then (for layers still without one) the tactic a profile recorded.
viz::LayerGraph layers_with_tactics(const ir::Graph& g, const std::map<std::string, std::string>& tactic_cache,
                                    nlohmann::json* unmapped);
nlohmann::json layers_json(const viz::LayerGraph& lg);
void print_layers(const nlohmann::json& layers, const nlohmann::json& unmapped);

// Weight bytes and, per profile and min/opt/max (or the static dims when there are no profiles), the
// activation arena estimated from shape inference at those dims.
nlohmann::json memory_plan_json(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles);
void print_memory_plan(const nlohmann::json& m);

// Per-layer times: --profile-json (kiln bench --profile --json output, also --sweep's) or --times (lines
// "NAME MS"). Errors name the file and line.
Result<std::map<std::string, viz::LayerTime>> read_layer_times(const std::string& profile_json,
                                                               const std::string& times_file);

}  // namespace kiln::cli
