// kiln inspect as a library: what a model or an engine holds, as the JSON document `kiln inspect --json` prints
// (docs/inspect.md lists its keys).
#pragma once
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/status.h"

namespace kiln {

struct InspectOptions {
  // For a bundle (kiln build --bundle): which of its engines the details describe.
  int member = 0;
  // Predict where the CUDA backend runs each node and which values it reads back ("placement"); needs a kiln
  // built with the CUDA backend, not a GPU.
  bool placement = false;
  // The layers after fusion and the memory plan ("layers", "memory") for a model too; an engine always has them.
  bool layers = false;
  // Input dims the memory plan is estimated at, instead of the engine's profiles; placement runs at the first
  // profile's opt dims (inputs it does not name: the engine's first profile, else their static dims).
  std::vector<OptimizationProfile> shapes;
  // Per-layer times to show with the layers and in the pictures: kiln bench --profile --json output, or a text
  // file of 'LAYER_NAME MILLISECONDS' lines.
  std::string profile_json_path, times_path;
  // Pictures of the graph after fusion, written when set: graphviz DOT, and an SVG drawn by kiln.
  std::string dot_path, svg_path;
};

// `path`: an ONNX model (.onnx) or an engine (.kiln). A model goes through kiln build's default passes for the
// views that show it as built (layers, pictures, placement, control flow). What the reader should know but is no
// error (timed layers that are not in the graph) is listed under "warnings".
Result<std::string> inspect_json(const std::string& path, const InspectOptions& options = {});

// A bundle's engines as a JSON array: each one's precision, nodes, weight bytes, tactics and profiles.
std::string bundle_members_json(const Engine& bundle);

}  // namespace kiln
