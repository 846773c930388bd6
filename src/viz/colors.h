// Fill colours of the pictures, as "#rrggbb": one per op (stable across runs and models, so a FusedConv looks
// the same in every picture) and a heat scale for time.
#pragma once
#include <map>
#include <set>
#include <string>

namespace kiln::viz {

std::string op_color(const std::string& op);
// Colours for the ops of one picture: the common ops keep their own, the others take palette colours in name
// order, so no two ops of a picture share one while the palette lasts.
std::map<std::string, std::string> op_colors(const std::set<std::string>& ops);
// fraction 0 (fast) .. 1 (the slowest layer): pale yellow through orange to dark red.
std::string time_color(double fraction);
inline constexpr const char* kInputColor = "#b7e4c7";
inline constexpr const char* kOutputColor = "#a5c8ff";
inline constexpr const char* kNoTimeColor = "#dddddd";

}  // namespace kiln::viz
