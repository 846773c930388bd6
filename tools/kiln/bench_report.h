// kiln bench's report: one measured configuration as JSON (the schema is docs/schemas/bench.schema.json) and
// as text, with its warnings.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "bench_options.h"
#include "bench_streams.h"
#include "kiln/kiln.h"

namespace kiln::cli {

// What the report needs besides the timings.
struct RunSetup {
  const Engine* engine = nullptr;
  const std::map<std::string, Tensor>* inputs = nullptr;
  StreamSet* streams = nullptr;
  double load_file_ms = 0;
};

// Kiln, compiler and GPU this measurement ran with.
nlohmann::json build_info();
// The JSON object of one measured configuration (without "device_memory.process_delta_bytes", "profile" and
// "sweep_point", which the caller adds when it has them).
nlohmann::json result_json(const BenchOptions& o, const RunSetup& setup, const Measurement& m);
// The text report of one configuration, warnings last.
void print_report(const BenchOptions& o, const nlohmann::json& j);
// "warning: PREFIX<message>[: <advice>]" lines of a result, as print_report ends with them.
void print_warnings(const nlohmann::json& j, const std::string& prefix, bool advice);

}  // namespace kiln::cli
