// kiln inspect's layer view: the layers after fusion (op, precision, symbolic output shape, tactic, time) and the
// memory plan (weights; the activation arena at each profile's min/opt/max, estimated on the host).
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"
#include "viz/layer_graph.h"

namespace kiln::inspect {

// The layer graph with each layer's tactic: the engine's stored choices mapped to layers (see
// runtime/tactic_map.h), then (for layers still without one) the tactic a profile recorded.
viz::LayerGraph layers_with_tactics(const ir::Graph& g, const std::map<std::string, std::string>& tactic_cache,
                                    nlohmann::json* unmapped);
nlohmann::json layers_json(const viz::LayerGraph& lg);

// Weight bytes and, per profile and min/opt/max (or the static dims when there are no profiles), the
// activation arena estimated from shape inference at those dims.
nlohmann::json memory_plan_json(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles);

// Per-layer times: profile_json (kiln bench --profile --json output, also --sweep's) or times_file (lines
// "NAME MS"). Errors name the file and line.
Result<std::map<std::string, viz::LayerTime>> read_layer_times(const std::string& profile_json,
                                                               const std::string& times_file);

}  // namespace kiln::inspect
