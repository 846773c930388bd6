// RoiAlign: X [N, C, H, W], rois [R, 4] (x1, y1, x2, y2), batch_indices [R] -> [R, C, output_height, output_width].
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_roi_align(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("needs a float input X, got {}", dtype_name(dt));
  if (ctx.input_dtype(1) != dt) return ctx.error("rois is {} but X is {}", dtype_name(ctx.input_dtype(1)), dtype_name(dt));
  if (ctx.input_dtype(2) != DType::kI64)
    return ctx.error("batch_indices must be int64, got {}", dtype_name(ctx.input_dtype(2)));
  const std::string mode = ctx.node().attr_string("mode", "avg");
  if (mode != "avg" && mode != "max") return ctx.unsupported("mode '{}' is not supported (avg or max)", mode);
  const std::string coord = ctx.node().attr_string("coordinate_transformation_mode", "half_pixel");
  if (coord != "half_pixel" && coord != "output_half_pixel")
    return ctx.unsupported("coordinate_transformation_mode '{}' is not supported", coord);
  const int64_t oh = ctx.node().attr_int("output_height", 1), ow = ctx.node().attr_int("output_width", 1);
  if (oh <= 0 || ow <= 0) return ctx.error("output_height {} and output_width {} must be positive", oh, ow);
  const int64_t sampling = ctx.node().attr_int("sampling_ratio", 0);
  if (sampling < 0) return ctx.error("sampling_ratio must not be negative, got {}", sampling);
  // Each bin takes sampling_ratio^2 samples; past 1024 (a million per bin) the value is a corrupt attribute, not a
  // model anyone runs.
  if (sampling > 1024) return ctx.error("sampling_ratio {} is too large (kiln takes at most 1024)", sampling);
  const Shape& x = ctx.input_shape(0);
  const Shape& rois = ctx.input_shape(1);
  const Shape& idx = ctx.input_shape(2);
  if (x.has_rank() && x.rank() != 4) return ctx.error("input X must be 4-D [N, C, H, W], got {}", x.to_string());
  if (rois.has_rank() && (rois.rank() != 2 || (rois[1].is_static() && rois[1].value() != 4)))
    return ctx.error("rois must be [num_rois, 4], got {}", rois.to_string());
  if (idx.has_rank() && idx.rank() != 1) return ctx.error("batch_indices must be 1-D, got {}", idx.to_string());
  Dim r = rois.has_rank() ? rois[0] : Dim::unknown();
  if (idx.has_rank()) {
    if (r.is_static() && idx[0].is_static() && r.value() != idx[0].value())
      return ctx.error("rois {} and batch_indices {} disagree on the number of rois", rois.to_string(), idx.to_string());
    if (!r.is_static()) r = idx[0];
  }
  ctx.set_output(0, dt, Shape(std::vector<Dim>{r, x.has_rank() ? x[1] : Dim::unknown(), Dim(oh), Dim(ow)}));
  return Status();
}

}  // namespace

void register_roi_align(OpRegistry& r) { r.add({"RoiAlign", 3, 3, 1, 1, infer_roi_align}); }

}  // namespace kiln::ops
