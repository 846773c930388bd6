// kiln compare --precision-bisect: which layers an f16/bf16 engine must keep in f32 to pass the tolerance.
//
// The search knows nothing of engines: it asks an oracle whether the engine built with a given set of layers
// in f32 passes, and keeps the number of questions (each one a build and a comparison) small:
//   1. every candidate in f32 must pass (otherwise no set can help and the search stops);
//   2. the candidates ranked most suspect first (rank_fp32_candidates) are tried as growing prefixes
//      (1, 2, 4, ...) until one passes, so a good ranking costs about log2(N) questions;
//   3. delta debugging removes halves, then quarters ..., of that passing set while it still passes, down to a
//      set from which no single layer can be dropped.
// Answers are remembered by set, so no set is asked twice.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln::compare {

// Whether the engine with exactly these layers (besides the ones the caller always keeps) in f32 passes.
using PassesOracle = std::function<Result<bool>(const std::vector<std::string>& fp32_layers)>;

struct BisectResult {
  enum class Outcome {
    kFound,    // `layers` in f32 pass; dropping any one of them fails
    kAllFail,  // even every candidate in f32 fails: the error is not a matter of precision (or not of these
               // layers)
  };
  Outcome outcome = Outcome::kFound;
  std::vector<std::string> layers;  // in the order of `ranked`
  int checks = 0;                   // questions asked of the oracle (builds)
  std::vector<std::string> trace;   // one line per question: the set's size, its first names, pass/fail
};

// `ranked`: the candidates, most suspect first (no duplicates). The caller has seen the engine with none of
// them in f32 fail. An oracle error stops the search and is returned.
Result<BisectResult> find_fp32_layers(const std::vector<std::string>& ranked, const PassesOracle& passes);

// One layer of the engine's graph, with how far its outputs were from the reference in the failing run.
struct LayerError {
  std::string name;                 // the engine node (an ONNX node name the builder takes in fp32_layers)
  std::vector<std::string> inputs;  // values it reads
  std::vector<std::string> outputs;
  // max over its compared outputs and shapes of |engine - ref| / (atol + rtol * |ref|) at the worst element:
  // above 1 fails; infinite for NaN/Inf where the reference is finite; negative when not compared (fused
  // values the model does not name).
  double error = -1;
  bool writes_output = false;  // writes an output of the engine: its rounding is what the rule sees last
};

// Candidates, most suspect first: the first layer (in graph order) over tolerance, the layers reading its
// outputs (a layer kept in f32 whose reader is not still sees its result rounded), the layers writing the
// engine's outputs (rounded last, right before the comparison), then the layers by how much they make the
// error grow (their error minus the largest error among the layers they read), then the rest in graph order.
// `layers` in graph order.
std::vector<std::string> rank_fp32_candidates(const std::vector<LayerError>& layers);

// The tolerance ratio of one element: |value - ref| / (atol + rtol * |ref|), infinite when it fails with a
// zero tolerance or when the value is not finite and the reference differs.
double tolerance_ratio(double value, double ref, double atol, double rtol);

}  // namespace kiln::compare
