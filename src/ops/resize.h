// Resize (opsets 10-19) and the deprecated Upsample: attributes and the output-size plan, shared by inference and
// the CPU kernel so both derive sizes and scales from the scales/sizes/roi inputs identically.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

struct ResizeAttrs {
  std::string mode = "nearest";             // nearest, linear, cubic
  std::string coord = "half_pixel";         // coordinate_transformation_mode
  std::string nearest_mode = "round_prefer_floor";
  std::string keep_aspect = "stretch";      // keep_aspect_ratio_policy (18+)
  double cubic_a = -0.75;
  bool exclude_outside = false;
  bool antialias = false;
  double extrapolation = 0.0;
  std::vector<int64_t> axes;  // empty: every axis
  // Input positions at this opset (-1: none): Resize-10 and Upsample-9 take X, scales; Resize-11+ X, roi,
  // scales, sizes; Upsample-7 reads scales from an attribute.
  int roi_input = -1, scales_input = -1, sizes_input = -1;
  std::vector<float> scales_attr;
};

// Validates the mode strings for this op and opset. Errors start with the node label.
Result<ResizeAttrs> read_resize_attrs(const ir::Node& node, int64_t opset);

struct ResizePlan {
  std::vector<int64_t> out;       // per axis; -1 where unknown at build time
  std::vector<double> scales;     // per axis, as used by the coordinate transform
  std::vector<double> out_float;  // scale * in: the reference's (unrounded) output length
  std::vector<double> roi_start, roi_end;  // per axis, for tf_crop_and_resize
};

// `in` holds the input dims (-1 where unknown). scales/sizes/roi are the input values when known (null when
// absent or unknown); `*_unknown` says the input is present and non-empty but its value is not known yet.
Result<ResizePlan> plan_resize(const ir::Node& node, const ResizeAttrs& a, const std::vector<int64_t>& in,
                               const Tensor* scales, bool scales_unknown, const Tensor* sizes, bool sizes_unknown,
                               const Tensor* roi);

}  // namespace kiln::ops
