// kiln compare's report: what was compared, per shape and output (and layer), as text or JSON.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "kiln/compare.h"

namespace kiln::cli {

struct LayerResult {
  compare::Layer layer;     // the model's node and the value it writes
  std::string engine_node;  // the engine node computing it ("FusedConv 'conv1'")
  compare::TensorComparison cmp;
  // Model nodes fused into the engine node that computes this value (their own outputs are gone), upstream of it.
  std::vector<std::string> fused_with;
};

struct CaseResult {
  compare::ShapeCase shape;
  std::vector<compare::TensorComparison> outputs;
  std::vector<LayerResult> layers;               // --layerwise: compared layers, in the model's node order
  std::optional<size_t> first_divergence;        // index into layers
  bool pass() const;
};

struct CompareReport {
  std::string model, engine, reference, inputs;  // one line each: what was compared against what
  compare::Tolerance tolerance;
  bool layerwise = false;
  int layers_total = 0, layers_fused_away = 0;  // --layerwise: the model's node outputs, and those not in the engine
  std::vector<std::string> notes;
  std::vector<CaseResult> cases;
  bool pass() const;
};

void print_report(const CompareReport& r, std::ostream& os);
nlohmann::json report_json(const CompareReport& r);

}  // namespace kiln::cli
