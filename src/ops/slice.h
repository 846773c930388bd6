// Slice parameters, shared by Slice's inference and its CPU kernel so both resolve starts/ends alike.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace kiln::ops {

struct SliceParams {
  std::vector<int64_t> starts, ends, axes, steps;
};

// Attributes before opset 10, inputs 1..4 after (each null when omitted or, at build time, not constant).
// Omitted axes are 0..n-1 and omitted steps 1.
inline SliceParams slice_params(const ir::Node& node, int64_t opset, const Tensor* starts, const Tensor* ends,
                                const Tensor* axes, const Tensor* steps) {
  SliceParams p;
  if (opset < 10) {
    p.starts = node.attr_ints("starts");
    p.ends = node.attr_ints("ends");
    p.axes = node.attr_ints("axes");
  } else {
    p.starts = starts->to_int_vector();
    p.ends = ends->to_int_vector();
    if (axes) p.axes = axes->to_int_vector();
    if (steps) p.steps = steps->to_int_vector();
  }
  if (p.axes.empty())
    for (size_t i = 0; i < p.starts.size(); ++i) p.axes.push_back(static_cast<int64_t>(i));
  if (p.steps.empty()) p.steps.assign(p.starts.size(), 1);
  return p;
}

struct SliceAxis {
  int64_t start = 0;  // first index read
  int64_t size = 0;   // number of elements read
};

// ONNX clamping: negative starts/ends count from the end, then clamp to [0, dim] (step > 0) or [-1, dim-1]
// (step < 0), so INT64_MAX / INT64_MIN ends mean "to the end".
inline SliceAxis resolve_slice(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  SliceAxis r;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    r.size = end > start ? (end - start - 1) / step + 1 : 0;
  } else {
    start = std::clamp<int64_t>(start, -1, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    r.size = start > end ? (start - end - 1) / -step + 1 : 0;
  }
  r.start = start;
  return r;
}

}  // namespace kiln::ops
