// NonMaxSuppression: greedy per-(batch, class) box selection; the number of selected boxes depends on the data.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

// Inputs: boxes [B, N, 4], scores [B, C, N], max_output_boxes_per_class, iou_threshold, score_threshold.
Status infer_nms(InferContext& ctx) {
  const int64_t cpb = ctx.node().attr_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) return ctx.error("center_point_box must be 0 or 1, got {}", cpb);
  if (!is_float(ctx.input_dtype(0)) || !is_float(ctx.input_dtype(1)))
    return ctx.error("boxes and scores must be float, got {} and {}", dtype_name(ctx.input_dtype(0)),
                     dtype_name(ctx.input_dtype(1)));
  if (ctx.has_input(2) && ctx.input_dtype(2) != DType::kI64)
    return ctx.error("max_output_boxes_per_class must be i64, got {}", dtype_name(ctx.input_dtype(2)));
  for (size_t i = 2; i < 5; ++i) {
    if (!ctx.has_input(i)) continue;
    const Shape& s = ctx.input_shape(i);
    if (s.has_rank() && s.is_static() && num_elements(s.static_dims()) != 1)
      return ctx.error("input {} ('{}') must hold one value, got shape {}", i, ctx.node().inputs[i], s.to_string());
  }
  const Shape& boxes = ctx.input_shape(0);
  const Shape& scores = ctx.input_shape(1);
  if (boxes.has_rank() && (boxes.rank() != 3 || (boxes[2].is_static() && boxes[2].value() != 4)))
    return ctx.error("boxes must be [batch, boxes, 4], got {}", boxes.to_string());
  if (scores.has_rank() && scores.rank() != 3)
    return ctx.error("scores must be [batch, classes, boxes], got {}", scores.to_string());
  if (boxes.has_rank() && scores.has_rank()) {
    if (boxes[0].is_static() && scores[0].is_static() && boxes[0].value() != scores[0].value())
      return ctx.error("boxes {} and scores {} disagree on the batch size", boxes.to_string(), scores.to_string());
    if (boxes[1].is_static() && scores[2].is_static() && boxes[1].value() != scores[2].value())
      return ctx.error("boxes {} has {} boxes but scores {} scores {}", boxes.to_string(), boxes[1].value(),
                       scores.to_string(), scores[2].value());
  }
  ctx.set_output(0, DType::kI64, Shape(std::vector<Dim>{Dim::unknown(), Dim(3)}));
  return Status();
}

}  // namespace

void register_non_max_suppression(OpRegistry& r) { r.add({"NonMaxSuppression", 2, 5, 1, 1, infer_nms}); }

}  // namespace kiln::ops
