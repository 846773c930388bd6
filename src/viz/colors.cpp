#include "viz/colors.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <fmt/format.h>

namespace kiln::viz {

namespace {

// The ops most graphs are made of, with colours of their own.
const std::map<std::string, const char*>& common_colors() {
  static const std::map<std::string, const char*> kCommon = {
      {"FusedConv", "#8ecae6"},         {"Conv", "#8ecae6"},          {"FusedMatMul", "#ffd6a5"},
      {"MatMul", "#ffd6a5"},            {"Gemm", "#f1c0a0"},          {"FusedAttention", "#ffadad"},
      {"PointwiseChain", "#fdffb6"},    {"LayerNormalization", "#bdb2ff"}, {"FusedAddLayerNorm", "#bdb2ff"},
      {"RMSNormalization", "#bdb2ff"},  {"Softmax", "#ffc6ff"},       {"MaxPool", "#9bf6ff"},
      {"AveragePool", "#9bf6ff"},       {"GlobalAveragePool", "#c0d6b0"}, {"Reshape", "#e9ecef"},
      {"Transpose", "#e9ecef"},         {"Flatten", "#e9ecef"},       {"Concat", "#d0f4de"}};
  return kCommon;
}

// Other ops: pastels that keep black text readable, apart from the input/output/heat colours.
constexpr std::array<const char*, 10> kPalette = {"#caffbf", "#e4c1f9", "#f8ad9d", "#d8e2dc", "#ffe5ec",
                                                  "#cdb4db", "#b5e48c", "#f6bd60", "#84dcc6", "#e0c3a0"};

}  // namespace

std::string op_color(const std::string& op) {
  if (auto it = common_colors().find(op); it != common_colors().end()) return it->second;
  uint32_t h = 2166136261u;  // FNV-1a: the same op gets the same colour on every machine
  for (unsigned char c : op) h = (h ^ c) * 16777619u;
  return kPalette[h % kPalette.size()];
}

std::map<std::string, std::string> op_colors(const std::set<std::string>& ops) {
  std::map<std::string, std::string> out;
  size_t next = 0;
  for (const auto& op : ops) {
    auto it = common_colors().find(op);
    out[op] = it != common_colors().end() ? it->second : kPalette[next++ % kPalette.size()];
  }
  return out;
}

std::string time_color(double fraction) {
  struct Stop {
    double at;
    int r, g, b;
  };
  static constexpr std::array<Stop, 4> kStops = {
      Stop{0.0, 255, 247, 188}, Stop{0.4, 254, 196, 79}, Stop{0.75, 236, 112, 20}, Stop{1.0, 153, 52, 4}};
  const double f = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) : 0.0;
  size_t i = 1;
  while (i + 1 < kStops.size() && f > kStops[i].at) ++i;
  const Stop& a = kStops[i - 1];
  const Stop& b = kStops[i];
  const double t = (f - a.at) / (b.at - a.at);
  auto mix = [t](int x, int y) { return static_cast<int>(std::lround(x + (y - x) * t)); };
  return fmt::format("#{:02x}{:02x}{:02x}", mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b));
}

}  // namespace kiln::viz
