// Pad amounts, shared by Pad's inference and its CPU kernel.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ir/graph.h"

namespace kiln::ops {

// Per-axis begin/end pads (negative ones crop) of a rank-`rank` input: the 'paddings' (opset 1) or 'pads'
// (opset 2-10) attribute, else the pads input with optional axes (opset 18). Returns an error message, or "".
inline std::string pad_amounts(const ir::Node& node, int64_t opset, const Tensor* pads, const Tensor* axes,
                               int64_t rank, std::vector<int64_t>& begin, std::vector<int64_t>& end) {
  std::vector<int64_t> p;
  if (opset < 11) p = node.attr_ints(opset < 2 ? "paddings" : "pads");
  else p = pads->to_int_vector();
  std::vector<int64_t> ax;
  if (axes) {
    ax = axes->to_int_vector();
  } else {
    for (int64_t i = 0; i < rank; ++i) ax.push_back(i);
  }
  const size_t n = ax.size();
  if (p.size() != 2 * n)
    return fmt::format("pads {} must have {} entries (begin and end for each of {} axes)", dims_to_string(p), 2 * n,
                       n);
  begin.assign(rank, 0);
  end.assign(rank, 0);
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < n; ++i) {
    int64_t a = ax[i];
    if (a < -rank || a >= rank) return fmt::format("axis {} is out of range for rank {}", a, rank);
    if (a < 0) a += rank;
    if (seen[a]) return fmt::format("axes {} name axis {} twice", dims_to_string(ax), a);
    seen[a] = true;
    begin[a] = p[i];
    end[a] = p[i + n];
  }
  return "";
}

}  // namespace kiln::ops
