// Whether input dims fit an engine's declared shapes and optimization profiles, and which bundle member a set of
// input shapes goes to.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine_state.h"

namespace kiln {

// Checks dims against the engine's declared shape for d and its profile `profile` (none: shape only). The error
// names the input, dim and the allowed range.
Status check_input_dims(const EngineState& s, int profile, const TensorDesc& d, const std::vector<int64_t>& dims);

// A bundle's profile (an index into its profiles) for these input dims: of the profiles that take every given
// input's dims, the one whose largest shape (the product of its max dims, summed over inputs) is smallest; a
// tie goes to the earlier one. Inputs not in `dims` are not checked. An error lists every member's ranges.
Result<int> route_bundle(const EngineState& bundle, const std::map<std::string, std::vector<int64_t>>& dims);

}  // namespace kiln
