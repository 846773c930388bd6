// "Did you mean": the known names closest to an unknown one (case-insensitive edit distance), for messages
// about a name the user typed (--fp32-layers, kiln extract's --inputs/--outputs).
#pragma once
#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// Up to `count` names of `known`, nearest first (ties in name order).
std::vector<std::string> nearest_names(std::string_view name, const std::set<std::string>& known, size_t count = 3);

}  // namespace kiln
