// The graph after fusion as people look at it: one entry per layer (plus the graph's inputs and outputs), with
// its op, precision and symbolic output shape, and edges labelled by the tensor they carry. Constants
// (weights) are no entries: a picture of every weight would hide the layers. kiln inspect's --layers table,
// --dot and --svg all draw from this one model, so they never disagree.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::viz {

enum class EntryKind { kInput, kLayer, kOutput };

struct LayerEntry {
  EntryKind kind = EntryKind::kLayer;
  std::string name;   // node name, or the input/output value's name
  std::string op;     // op type; "input"/"output" for the graph's I/O
  std::string dtype;  // of the output (outputs joined by ","), e.g. "f16"
  std::string shape;  // symbolic, e.g. "[batch,16,32,32]"
  std::string tactic;      // the kernel choice, when known ("" otherwise)
  double ms = -1;          // time from a profile; negative: none
};

struct LayerEdge {
  size_t from = 0, to = 0;  // indices into LayerGraph::entries
  std::string value;        // the tensor's name
  std::string label;        // its shape
};

struct LayerGraph {
  std::vector<LayerEntry> entries;  // inputs, then layers in graph order, then outputs
  std::vector<LayerEdge> edges;
  // Index of a layer by node name.
  std::map<std::string, size_t> by_name() const;
};

LayerGraph layer_graph(const ir::Graph& g);

// Sets each layer's ms (and tactic, where the entry has none) from per-layer times keyed by node name.
// Returns how many layers got a time.
struct LayerTime {
  double ms = 0;
  std::string tactic;
};
size_t apply_times(LayerGraph& lg, const std::map<std::string, LayerTime>& times);

}  // namespace kiln::viz
