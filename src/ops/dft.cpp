// DFT and STFT. Signals carry their real/imaginary parts in the last dim (1: real, 2: complex); the output is
// always complex (last dim 2). DFT's axis is an attribute before opset 20 and an optional input from 20 on.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status check_flag(const InferContext& ctx, const char* name, int64_t value) {
  if (value != 0 && value != 1) return ctx.error("attribute '{}' must be 0 or 1, got {}", name, value);
  return Status();
}

// An optional scalar integer input (dft_length, frame_step, frame_length, axis). `known` is set only when the
// input is present and its value is available (always at run time, for constants at build time).
Status scalar_int_input(const InferContext& ctx, size_t i, const char* name, bool& known, int64_t& value) {
  known = false;
  if (!ctx.has_input(i)) return Status();
  const DType dt = ctx.input_dtype(i);
  if (dt != DType::kI32 && dt != DType::kI64)
    return ctx.error("{} must be i32 or i64, got {}", name, dtype_name(dt));
  const Shape& s = ctx.input_shape(i);
  // Exporters sometimes give [1] for a scalar; one element is what matters.
  if (s.has_rank() && s.is_static() && num_elements(s.static_dims()) != 1)
    return ctx.error("{} must be a scalar, got shape {}", name, s.to_string());
  std::vector<int64_t> v;
  if (constant_ints(ctx, i, v) && v.size() == 1) {
    known = true;
    value = v[0];
  }
  return Status();
}

// Checks the last dim (1 real, 2 complex) of a signal and that onesided is only asked of real signals.
Status check_complex_dim(const InferContext& ctx, const Shape& in, bool onesided) {
  const Dim& last = in[in.rank() - 1];
  if (!last.is_static()) return Status();
  if (last.value() != 1 && last.value() != 2)
    return ctx.error("the last dim of input {} must be 1 (real) or 2 (complex), got {}", in.to_string(),
                     last.value());
  if (onesided && last.value() == 2)
    return ctx.error("onesided=1 needs a real input (last dim 1), but input {} is complex", in.to_string());
  return Status();
}

Dim onesided_bins(const Dim& n) {
  return n.is_static() ? Dim(n.value() / 2 + 1) : Dim::unknown();
}

Status infer_dft(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("input must be a float tensor, got {}", dtype_name(dt));
  const int64_t inverse = ctx.node().attr_int("inverse", 0);
  const int64_t onesided = ctx.node().attr_int("onesided", 0);
  KILN_RETURN_IF_ERROR(check_flag(ctx, "inverse", inverse));
  KILN_RETURN_IF_ERROR(check_flag(ctx, "onesided", onesided));
  // ONNX's inference for opsets 17 and 20 rejects this pair; a later spec defines it (inverse real FFT).
  if (inverse && onesided) return ctx.unsupported("inverse=1 together with onesided=1 is not supported");

  bool length_known = false, axis_known = true;
  int64_t length = 0, axis = 1;
  KILN_RETURN_IF_ERROR(scalar_int_input(ctx, 1, "dft_length", length_known, length));
  if (length_known && length < 1) return ctx.error("dft_length must be >= 1, got {}", length);
  if (ctx.opset() >= 20) {
    axis = -2;
    if (ctx.has_input(2)) KILN_RETURN_IF_ERROR(scalar_int_input(ctx, 2, "axis", axis_known, axis));
  } else {
    if (ctx.has_input(2))
      return ctx.error("axis is an input only from opset 20; opset {} has it as an attribute", ctx.opset());
    axis = ctx.node().attr_int("axis", 1);
  }

  const Shape& in = ctx.input_shape(0);
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t r = static_cast<int64_t>(in.rank());
  if (r < 2)
    return ctx.error(
        "input must have rank >= 2 (signal dims, then 1 for real or 2 for complex values), got {}",
        in.to_string());
  KILN_RETURN_IF_ERROR(check_complex_dim(ctx, in, onesided != 0));

  std::vector<Dim> out = in.dims();
  out[r - 1] = Dim(2);
  if (!axis_known) {
    // Any signal dim may be the one transformed; it keeps its size only without dft_length and onesided.
    if (ctx.has_input(1) || onesided)
      for (int64_t i = 0; i < r - 1; ++i) out[i] = Dim::unknown();
    ctx.set_output(0, dt, Shape(out));
    return Status();
  }
  // The last dim holds the real/imaginary parts, so it is never a signal axis.
  if (axis < -r || axis > r - 2 || axis == -1)
    return ctx.error(
        "axis {} is out of range for input {} of rank {} (allowed: 0..{} or {}..-2; the last dim "
        "holds the real/imaginary parts)",
        axis, in.to_string(), r, r - 2, -r);
  const int64_t a = axis < 0 ? axis + r : axis;
  const Dim n = length_known ? Dim(length) : (ctx.has_input(1) ? Dim::unknown() : in[a]);
  if (n.is_static() && n.value() == 0)
    return ctx.error("the signal along axis {} of input {} is empty; a DFT needs at least one sample", a,
                     in.to_string());
  out[a] = onesided ? onesided_bins(n) : n;
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

Status infer_stft(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("signal must be a float tensor, got {}", dtype_name(dt));
  const int64_t onesided = ctx.node().attr_int("onesided", 1);
  KILN_RETURN_IF_ERROR(check_flag(ctx, "onesided", onesided));

  bool step_known = false, length_known = false;
  int64_t step = 0, length = 0;
  KILN_RETURN_IF_ERROR(scalar_int_input(ctx, 1, "frame_step", step_known, step));
  if (step_known && step < 1) return ctx.error("frame_step must be >= 1, got {}", step);
  KILN_RETURN_IF_ERROR(scalar_int_input(ctx, 3, "frame_length", length_known, length));
  if (length_known && length < 1) return ctx.error("frame_length must be >= 1, got {}", length);

  const Shape& sig = ctx.input_shape(0);
  if (sig.has_rank()) {
    if (sig.rank() != 3) return ctx.error("signal must be [batch, length, 1 or 2], got {}", sig.to_string());
    KILN_RETURN_IF_ERROR(check_complex_dim(ctx, sig, onesided != 0));
  }
  Dim window_len = Dim::unknown();
  if (ctx.has_input(2)) {
    if (ctx.input_dtype(2) != dt)
      return ctx.error("window is {} but the signal is {}; both must have the same dtype",
                       dtype_name(ctx.input_dtype(2)), dtype_name(dt));
    const Shape& w = ctx.input_shape(2);
    if (w.has_rank() && w.rank() != 1) return ctx.error("window must be 1-D, got {}", w.to_string());
    if (w.has_rank()) window_len = w[0];
  }

  // The frame (and DFT) length: frame_length, else the window's length, else the whole signal.
  Dim frame = Dim::unknown();
  if (ctx.has_input(3)) {
    if (length_known) frame = Dim(length);
    if (length_known && window_len.is_static() && window_len.value() != length)
      return ctx.error("window has {} values but frame_length is {}; they must match", window_len.value(),
                       length);
  } else if (ctx.has_input(2)) {
    frame = window_len;
  } else if (sig.has_rank()) {
    frame = sig[1];
  }
  if (frame.is_static() && frame.value() == 0) return ctx.error("the frame length is 0; it must be >= 1");

  const Dim sig_len = sig.has_rank() ? sig[1] : Dim::unknown();
  Dim frames = Dim::unknown();
  if (sig_len.is_static() && frame.is_static()) {
    if (frame.value() > sig_len.value())
      return ctx.error("frame length {} is longer than the signal {} ({} samples)", frame.value(),
                       sig.to_string(), sig_len.value());
    if (step_known) frames = Dim(1 + (sig_len.value() - frame.value()) / step);
  } else if (!ctx.has_input(2) && !ctx.has_input(3)) {
    frames = Dim(1);  // the frame is the whole signal
  }
  const Dim batch = sig.has_rank() ? sig[0] : Dim::unknown();
  const Dim bins = onesided ? onesided_bins(frame) : frame;
  ctx.set_output(0, dt, Shape(std::vector<Dim>{batch, frames, bins, Dim(2)}));
  return Status();
}

}  // namespace

void register_dft(OpRegistry& r) {
  r.add({"DFT", 1, 3, 1, 1, infer_dft});
  r.add({"STFT", 2, 4, 1, 1, infer_stft});
}

}  // namespace kiln::ops
