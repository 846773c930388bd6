// kiln inspect: what became of each If, Loop and Scan. An If on a constant or static-shape condition was folded
// at build (only its branch compiled; recorded by passes::fold_static_if); what is left reads its condition or
// trip count at run time, and the text says where that runs on the engine's backend.
#pragma once
#include <nlohmann/json.hpp>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln::inspect {

// One entry per control-flow node, nested bodies included (their node names joined with '/'): node, op, case
// ("folded", "shape-decided", "data-dependent", "static trip count", "runtime trip count", "scan"), the value
// that decides it, and what kiln does. BACKEND is the engine's; kAuto describes a model not built yet.
nlohmann::json control_flow_json(const ir::Graph& g, BackendKind backend);

}  // namespace kiln::inspect
