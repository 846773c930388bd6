// kiln bench --html FILE: one self-contained page (no scripts, no network) from bench's JSON: latency histogram
// and percentiles, per-layer time bars (--profile), the sweep across shapes (--sweep), warnings and the engine's
// manifest.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace kiln::cli {

// Fills the page's pictures use; tests look for them in a browser's screenshot.
inline constexpr const char* kHistogramFill = "#4c78a8";
inline constexpr const char* kLayerFill = "#f58518";
inline constexpr const char* kFallbackLayerFill = "#e45756";  // a CPU fallback inside a CUDA engine
inline constexpr const char* kSweepFill = "#54a24b";

// `results`: one result object, or the array --sweep makes; `manifest`: the engine file's manifest (may be null).
std::string bench_html(const nlohmann::json& results, const nlohmann::json& manifest);

}  // namespace kiln::cli
