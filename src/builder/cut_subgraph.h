// Cutting a subgraph out of a model: the nodes between named values, as a graph of its own (kiln extract).
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

struct CutReport {
  // --inputs that no node needed for the outputs reads (the part keeps them as inputs nothing reads).
  std::vector<std::string> unused_inputs;
  // Set when shape inference over the whole model failed: the part's dtypes and shapes are the ones the
  // model declares.
  std::string inference_note;
};

// The part of g that computes `outputs` from `inputs`: its graph inputs are `inputs` (dtype and shape from the
// model's declarations refined by kiln's shape inference, dynamic dims keep their names), its outputs
// `outputs`, its nodes exactly those the outputs need (walking back and stopping at the inputs; a node whose
// If/Loop body reads an outer value depends on that value), its initializers those the nodes read.
// Errors: a name that is no value of g's main graph (with the nearest names), a cut that is not closed (a graph
// input of g outside `inputs` would be needed: names each such value and the nodes that read it), an output
// that is a constant or also an input.
Result<ir::Graph> cut_subgraph(ir::Graph g, const std::vector<std::string>& inputs,
                               const std::vector<std::string>& outputs, CutReport* report = nullptr);

// Makes each named value a graph output of g too (after the existing ones), so running g yields it; graph
// outputs are kept under their names by every pass, so fusions cannot take them away.
Status expose_values(ir::Graph& g, const std::vector<std::string>& names);

}  // namespace kiln
