// kiln compare --precision-bisect, the CLI side of src/compare/precision_bisect.h: ranks the engine's layers
// by the failing run's layerwise errors, asks the search which to keep in f32 (one build and comparison per
// question), writes them to a file kiln build --fp32-layers @FILE reads, and times the engine with and
// without.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "compare_report.h"
#include "kiln/compare.h"

namespace kiln::cli {

struct BisectSetup {
  std::string model, precision;              // precision: "f16" or "bf16"
  std::string out_path;                      // where the layer list goes
  std::vector<std::string> command_flags;    // the build flags to repeat in the kiln build command printed
  std::vector<std::string> kept;             // --fp32-layers the user gave: in f32 in every build
  std::vector<std::string> model_nodes;      // node names of the model as imported (what --fp32-layers takes)
  std::vector<compare::EngineLayer> layers;  // the engine's graph (without the search's layers)
  std::vector<std::string> engine_outputs;
  bool cpu_backend = false, emulated = false;
  // The engine with these layers (the kept ones included) in f32, as the comparison runs it (emulated or
  // not), and the engine itself (to time).
  std::function<Result<Engine>(const std::vector<std::string>& fp32_layers)> build;
  std::function<Result<Engine>(const Engine& built)> as_compared;
  std::function<Result<bool>(const Engine& compared)> passes;
  // Median latency in ms of the built engine, and what it was timed on ("profile 0 opt: x [8,16], 20 runs").
  std::function<Result<double>(const Engine& built)> median_ms;
  std::string timing_what;
};

struct BisectOutcome {
  int exit_code = 0;  // 0: a set was found (or none is needed), 1: even every layer in f32 fails
  std::vector<std::string> lines;
  nlohmann::json json;
};

// `baseline`: the comparison of the engine as built (with --layerwise), `tol` its rule, `built` that engine.
Result<BisectOutcome> precision_bisect(const BisectSetup& s, const CompareReport& baseline,
                                       const Engine& built);

}  // namespace kiln::cli
