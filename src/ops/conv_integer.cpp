// ConvInteger and QLinearConv: N-D grouped convolution over 8-bit operands (NCHW, weights MCkk).
#include "ops/conv_integer.h"

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

std::string quant_conv_geometry(const ir::Node& node, const std::vector<int64_t>& in, const std::vector<int64_t>& w,
                                QuantConvGeometry& g) {
  const size_t n = in.size();
  auto per_dim = [&](const char* key, int64_t fallback, size_t count, std::vector<int64_t>& out) -> std::string {
    out = node.attr_ints(key, std::vector<int64_t>(count, fallback));
    if (out.size() != count)
      return fmt::format("attribute '{}' has {} values but the input has {} spatial dims{}", key, out.size(), n,
                         count == 2 * n ? " (pads need begin and end per dim)" : "");
    return "";
  };
  std::string err;
  if (!(err = per_dim("strides", 1, n, g.strides)).empty()) return err;
  if (!(err = per_dim("dilations", 1, n, g.dilations)).empty()) return err;
  std::vector<int64_t> pads;
  if (!(err = per_dim("pads", 0, 2 * n, pads)).empty()) return err;
  g.kernel = w;
  if (node.has_attr("kernel_shape")) {
    g.kernel = node.attr_ints("kernel_shape");
    if (g.kernel.size() != n)
      return fmt::format("kernel_shape {} does not match the {} spatial dims of the input", dims_to_string(g.kernel), n);
    for (size_t i = 0; i < n; ++i)
      if (w[i] >= 0 && w[i] != g.kernel[i])
        return fmt::format("kernel_shape {} does not match the weight's spatial dims {}", dims_to_string(g.kernel),
                           dims_to_string(w));
  }
  g.group = node.attr_int("group", 1);
  if (g.group < 1) return fmt::format("group must be >= 1, got {}", g.group);
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    return fmt::format("auto_pad '{}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", auto_pad);
  g.pad_begin.assign(n, 0);
  g.pad_end.assign(n, 0);
  g.out.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const int64_t s = g.strides[i], d = g.dilations[i], k = g.kernel[i];
    if (s < 1 || d < 1) return fmt::format("strides and dilations must be >= 1, got {} and {}", s, d);
    if (k == 0) return "the kernel has an empty spatial dim";
    if (auto_pad == "NOTSET") {
      g.pad_begin[i] = pads[i];
      g.pad_end[i] = pads[i + n];
      if (pads[i] < 0 || pads[i + n] < 0) return fmt::format("pads {} has a negative value", dims_to_string(pads));
    }
    if (in[i] < 0 || k < 0) continue;
    const int64_t ek = (k - 1) * d + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.out[i] = (in[i] + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * s + ek - in[i]);
      g.pad_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_end[i] = total - g.pad_begin[i];
      continue;
    }
    const int64_t span = in[i] + g.pad_begin[i] + g.pad_end[i] - ek;
    if (span < 0)
      return fmt::format("spatial dim {} is {} (padded {}) but the dilated kernel spans {}", i, in[i],
                         in[i] + g.pad_begin[i] + g.pad_end[i], ek);
    g.out[i] = span / s + 1;
  }
  return "";
}

namespace {

bool is_8bit(DType t) { return t == DType::kU8 || t == DType::kI8; }

bool is_scalar_shape(const Shape& s) {
  return s.rank() == 0 || (s.rank() == 1 && s[0].is_static() && s[0].value() == 1);
}

std::vector<int64_t> dims_or_unknown(const Shape& s, size_t from) {
  std::vector<int64_t> out;
  for (size_t i = from; i < s.rank(); ++i) out.push_back(s[i].is_static() ? s[i].value() : -1);
  return out;
}

// A per-output-channel parameter (w zero point / scale, bias) is a scalar or has M elements.
Status check_per_channel(const InferContext& ctx, size_t input, const Dim& m, const char* what) {
  if (!ctx.has_input(input)) return Status();
  const Shape& p = ctx.input_shape(input);
  if (!p.has_rank() || p.rank() == 0) return Status();
  if (p.rank() != 1) return ctx.error("{} must be a scalar or 1-D, got {}", what, p.to_string());
  if (p[0].is_static() && m.is_static() && p[0].value() != 1 && p[0].value() != m.value())
    return ctx.error("{} has {} elements but the weight has {} output channels", what, p[0].value(), m.value());
  return Status();
}

Status infer_conv_shape(InferContext& ctx, size_t xi, size_t wi, DType out_dtype) {
  for (auto [i, name] : {std::pair<size_t, const char*>{xi, "x"}, {wi, "w"}})
    if (!is_8bit(ctx.input_dtype(i))) return ctx.error("{} must be u8 or i8, got {}", name, dtype_name(ctx.input_dtype(i)));
  const Shape& x = ctx.input_shape(xi);
  const Shape& w = ctx.input_shape(wi);
  if (x.has_rank() && x.rank() < 3) return ctx.error("x must be [N, C, spatial...], got {}", x.to_string());
  if (w.has_rank() && w.rank() < 3) return ctx.error("w must be [M, C/group, kernel...], got {}", w.to_string());
  if (x.has_rank() && w.has_rank() && x.rank() != w.rank())
    return ctx.error("x {} and w {} must have the same rank", x.to_string(), w.to_string());
  if (!x.has_rank() && !w.has_rank()) {
    ctx.set_output(0, out_dtype, Shape::unknown_rank());
    return Status();
  }
  const size_t rank = x.has_rank() ? x.rank() : w.rank();
  const std::vector<int64_t> in = x.has_rank() ? dims_or_unknown(x, 2) : std::vector<int64_t>(rank - 2, -1);
  const std::vector<int64_t> ks = w.has_rank() ? dims_or_unknown(w, 2) : std::vector<int64_t>(rank - 2, -1);
  QuantConvGeometry g;
  if (std::string err = quant_conv_geometry(ctx.node(), in, ks, g); !err.empty()) return ctx.error("{}", err);
  const Dim m = w.has_rank() && w.rank() > 0 ? w[0] : Dim::unknown();
  if (x.has_rank() && w.has_rank() && x[1].is_static() && w[1].is_static() &&
      x[1].value() != w[1].value() * g.group)
    return ctx.error("input x {} has {} channels but the weight {} with group {} expects {}", x.to_string(),
                     x[1].value(), w.to_string(), g.group, w[1].value() * g.group);
  if (m.is_static() && m.value() % g.group != 0)
    return ctx.error("the weight's {} output channels are not divisible by group {}", m.value(), g.group);
  std::vector<Dim> out{x.has_rank() ? x[0] : Dim::unknown(), m};
  for (int64_t o : g.out) out.push_back(o >= 0 ? Dim(o) : Dim::unknown());
  ctx.set_output(0, out_dtype, Shape(out));
  return Status();
}

Status check_zero_point_dtype(const InferContext& ctx, size_t zp, size_t x, const char* what) {
  if (ctx.has_input(zp) && ctx.input_dtype(zp) != ctx.input_dtype(x))
    return ctx.error("{} is {} but its input is {}; they must match", what, dtype_name(ctx.input_dtype(zp)),
                     dtype_name(ctx.input_dtype(x)));
  return Status();
}

// Inputs: x, w, x_zero_point, w_zero_point.
Status infer_conv_integer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_zero_point_dtype(ctx, 2, 0, "x_zero_point"));
  KILN_RETURN_IF_ERROR(check_zero_point_dtype(ctx, 3, 1, "w_zero_point"));
  if (ctx.has_input(2) && ctx.input_shape(2).has_rank() && ctx.input_shape(2).rank() > 0 &&
      !is_scalar_shape(ctx.input_shape(2)))
    return ctx.unsupported("x_zero_point must be a scalar, got {}", ctx.input_shape(2).to_string());
  const Shape& w = ctx.input_shape(1);
  KILN_RETURN_IF_ERROR(check_per_channel(ctx, 3, w.has_rank() && w.rank() > 0 ? w[0] : Dim::unknown(), "w_zero_point"));
  return infer_conv_shape(ctx, 0, 1, DType::kI32);
}

// Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B.
Status infer_qlinear_conv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_zero_point_dtype(ctx, 2, 0, "x_zero_point"));
  KILN_RETURN_IF_ERROR(check_zero_point_dtype(ctx, 5, 3, "w_zero_point"));
  if (!is_8bit(ctx.input_dtype(7)))
    return ctx.error("y_zero_point must be u8 or i8, got {}", dtype_name(ctx.input_dtype(7)));
  for (size_t i : {1, 2, 6, 7})
    if (ctx.input_shape(i).has_rank() && !is_scalar_shape(ctx.input_shape(i)))
      return ctx.unsupported("input {} ('{}') must be a scalar (per-tensor), got {}", i, ctx.node().inputs[i],
                             ctx.input_shape(i).to_string());
  const Shape& w = ctx.input_shape(3);
  const Dim m = w.has_rank() && w.rank() > 0 ? w[0] : Dim::unknown();
  KILN_RETURN_IF_ERROR(check_per_channel(ctx, 4, m, "w_scale"));
  KILN_RETURN_IF_ERROR(check_per_channel(ctx, 5, m, "w_zero_point"));
  if (ctx.has_input(8)) {
    if (ctx.input_dtype(8) != DType::kI32) return ctx.error("B must be i32, got {}", dtype_name(ctx.input_dtype(8)));
    KILN_RETURN_IF_ERROR(check_per_channel(ctx, 8, m, "B"));
  }
  return infer_conv_shape(ctx, 0, 3, ctx.input_dtype(7));
}

}  // namespace

void register_conv_integer(OpRegistry& r) {
  r.add({"ConvInteger", 2, 4, 1, 1, infer_conv_integer});
  r.add({"QLinearConv", 8, 9, 1, 1, infer_qlinear_conv});
}

}  // namespace kiln::ops
