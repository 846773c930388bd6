// kiln bench --profile: per-layer GPU/CPU times (median over runs), ranked, with a per-op summary.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::cli {

// The median of `runs` node-by-node runs, per layer.
Result<std::vector<LayerTiming>> profile_median(ExecutionContext& ctx, void* stream, int runs);
// Layers ranked by time with share and cumulative share, host shape math apart, and per-op totals.
nlohmann::json profile_json(std::vector<LayerTiming> all, int runs);
// The top `top` layers and the per-op table, as kiln bench prints them.
void print_profile(const nlohmann::json& p, int top);

}  // namespace kiln::cli
