// kiln bench --sweep: every optimization profile's min, opt and max shapes, timed one after another.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench_inputs.h"
#include "bench_options.h"
#include "kiln/kiln.h"

namespace kiln::cli {

struct SweepPoint {
  std::optional<int> profile;  // none: an engine without profiles, run once at its static dims
  std::string point;           // "min", "opt", "max", or "static"
  ShapeMap shapes;             // the profile's dims at that point, per input it names
};

// Profile by profile, min then opt then max.
std::vector<SweepPoint> sweep_points(const Engine& e);
// --sweep's flags that cannot go with it, as an error naming them; ok otherwise.
Status check_sweep_options(const BenchOptions& o);
// One row per point: shapes, latency median/p95/p99, cv, throughput; each row's warnings after the table.
void print_sweep(const nlohmann::json& rows);

}  // namespace kiln::cli
