// The builder's tactic timing for CUDA engines (see util/tactic_cache.h): runs the engine once at each
// profile's min, opt and max shapes so every kernel with candidate algorithms times them and records its
// choice in the engine's cache, which the engine file then carries. A timing cache file seeds the cache
// first (entries made for another GPU or library version are ignored) and receives the union afterwards.
#pragma once
#include <functional>
#include <string>
#include <string_view>

#include "engine/engine_state.h"

namespace kiln {

struct TuneReport {
  size_t shapes = 0;       // input shape sets run
  size_t from_file = 0;    // choices the timing cache file supplied
  size_t timed = 0;        // choices timed now
  double seconds = 0;
};

// Never fails the build for a run that fails (the engine still works, kernels time on first use): the reason
// goes to `progress`. Errors are for an unreadable or unwritable timing cache file only.
Result<TuneReport> tune_tactics(EngineState& state, const std::string& timing_cache_path,
                                const std::function<void(std::string_view)>& progress);

}  // namespace kiln
