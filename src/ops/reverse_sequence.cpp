// ReverseSequence: for each batch entry b, reverses the first sequence_lens[b] steps along the time axis.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_reverse_sequence(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const Shape& lens = ctx.input_shape(1);
  const int64_t time_axis = ctx.node().attr_int("time_axis", 0);
  const int64_t batch_axis = ctx.node().attr_int("batch_axis", 1);
  if (!((time_axis == 0 && batch_axis == 1) || (time_axis == 1 && batch_axis == 0)))
    return ctx.error("time_axis and batch_axis must be 0 and 1 in some order, got {} and {}", time_axis, batch_axis);
  if (in.has_rank() && in.rank() < 2) return ctx.error("input must be at least 2-D, got {}", in.to_string());
  if (lens.has_rank() && lens.rank() != 1) return ctx.error("sequence_lens must be 1-D, got {}", lens.to_string());
  if (in.has_rank() && lens.has_rank() && in[batch_axis].is_static() && lens[0].is_static() &&
      in[batch_axis].value() != lens[0].value())
    return ctx.error("sequence_lens {} must have one entry per batch entry of the input {} (batch axis {})",
                     lens.to_string(), in.to_string(), batch_axis);
  return infer_same_as_input0(ctx);
}

}  // namespace

void register_reverse_sequence(OpRegistry& r) { r.add({"ReverseSequence", 2, 2, 1, 1, infer_reverse_sequence}); }

}  // namespace kiln::ops
