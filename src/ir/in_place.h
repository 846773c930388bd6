// Whether a graph output may be written straight into the buffer of a graph input (a KV cache updated in place),
// or must be computed aside and copied there after the run. Decided from the graph alone, so the builder (which
// reports it) and the executors (which act on it) agree.
#pragma once
#include <string>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ir {

struct InPlaceVerdict {
  bool in_place = false;
  std::string why;  // when not: which node stops it (for kiln build and kiln inspect)
};

// In place when the output's producer (seen through views: Identity/Reshape/Squeeze/Unsqueeze/Flatten) is a
// Scatter/ScatterND/ScatterElements whose data operand is the input (through views), its output has the input's
// byte size, and no node after it reads the input: then the scatter's copy of data to output is a no-op and only
// the updated rows are written.
// Ops whose output is its first input's bytes under new dims (Identity, Reshape, Squeeze, Unsqueeze, Flatten):
// executors give it the input's storage, so writing one writes the other.
bool is_view(const Node& n);

// Checks that OUTPUT and INPUT are an output and an input of the graph with the same dtype and shape (what an
// output written into an input's buffer needs); the message names both with their types.
Status check_alias(const Graph& g, const std::string& output, const std::string& input);

// "f32[batch,12,1024,64]"
std::string describe_value(const Graph& g, const std::string& name);

InPlaceVerdict in_place_verdict(const Graph& graph, const std::string& output, const std::string& input);

}  // namespace kiln::ir
