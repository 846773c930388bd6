// Einsum equations resolved to labels, shared by inference and the CPU kernel.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ops {

// Every dim of every operand carries a label id in [0, num_labels); dims of the broadcast ellipsis get labels
// of their own. Repeated labels within one input take a diagonal; labels absent from the output are summed.
struct EinsumPlan {
  std::vector<std::vector<int>> inputs;  // per input, one label per dim
  std::vector<int> output;               // one label per output dim
  int num_labels = 0;
};

// ranks[i] < 0: input i's rank is unknown (allowed only when its term has no ellipsis).
Result<EinsumPlan> plan_einsum(const ir::Node& node, const std::vector<int64_t>& ranks);

}  // namespace kiln::ops
