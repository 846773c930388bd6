// The activation memory of a graph at given input dims, computed on the host: shape inference at those dims
// sizes every intermediate value, its lifetime runs from the node that writes it to the last node that reads
// it, and pack_by_lifetime (the CUDA executor's own packer) places them in one arena. The executor's real plan
// is traced on the GPU at a context's first run of each shape and also holds kernel scratch (host copies,
// padded operands), so this is the arena's floor: what kiln inspect shows without a device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

struct ActivationEstimate {
  size_t arena_bytes = 0;    // packed: values alive at the same time never share bytes
  size_t total_bytes = 0;    // every intermediate value, with no reuse
  size_t values = 0;         // intermediate values counted (graph inputs and outputs live in the caller's buffers)
  std::string largest;       // the largest value and its size
  size_t largest_bytes = 0;
  std::vector<std::string> unsized;  // values whose size depends on data (NonZero, Unique…): not counted
};

Result<ActivationEstimate> estimate_activations(const ir::Graph& g,
                                                const std::map<std::string, std::vector<int64_t>>& input_dims);

}  // namespace kiln
