// Resize and Upsample: attribute reading, the output-size plan, and shape inference.
#include "ops/resize.h"

#include <algorithm>
#include <cmath>

#include "ops/op_table.h"
#include "ops/shape_utils.h"
#include "util/error.h"

namespace kiln::ops {

namespace {

bool one_of(const std::string& s, std::initializer_list<const char*> options) {
  for (const char* o : options)
    if (s == o) return true;
  return false;
}

}  // namespace

Result<ResizeAttrs> read_resize_attrs(const ir::Node& node, int64_t opset) {
  ResizeAttrs a;
  const bool upsample = node.op_type == "Upsample";
  a.mode = node.attr_string("mode", "nearest");
  if (a.mode == "bilinear" || a.mode == "trilinear") a.mode = "linear";  // Upsample-7 and older exporters
  if (upsample || opset < 11) {
    // Before Resize-11 there were no coordinate modes: output x reads input x / scale.
    a.coord = "asymmetric";
    a.nearest_mode = "floor";
    if (upsample && opset < 9) {
      a.scales_attr = node.attr_floats("scales");
      if (a.scales_attr.empty()) return invalid_model("{}: attribute 'scales' is required", node.label());
    } else {
      a.scales_input = 1;
    }
    if (!one_of(a.mode, {"nearest", "linear"}))
      return unsupported("{}: mode '{}' is not supported (nearest or linear)", node.label(), a.mode);
    return a;
  }
  a.roi_input = 1;
  a.scales_input = 2;
  a.sizes_input = 3;
  a.coord = node.attr_string("coordinate_transformation_mode", "half_pixel");
  a.nearest_mode = node.attr_string("nearest_mode", "round_prefer_floor");
  a.cubic_a = node.attr_float("cubic_coeff_a", -0.75f);
  a.exclude_outside = node.attr_int("exclude_outside", 0) != 0;
  a.extrapolation = node.attr_float("extrapolation_value", 0.f);
  if (opset >= 18) {
    a.antialias = node.attr_int("antialias", 0) != 0;
    a.axes = node.attr_ints("axes");
    a.keep_aspect = node.attr_string("keep_aspect_ratio_policy", "stretch");
  }
  if (!one_of(a.mode, {"nearest", "linear", "cubic"}))
    return unsupported("{}: mode '{}' is not supported (nearest, linear or cubic)", node.label(), a.mode);
  if (!one_of(a.coord, {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                        "tf_half_pixel_for_nn", "tf_crop_and_resize"}))
    return unsupported("{}: coordinate_transformation_mode '{}' is not supported", node.label(), a.coord);
  if (!one_of(a.nearest_mode, {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}))
    return unsupported("{}: nearest_mode '{}' is not supported", node.label(), a.nearest_mode);
  if (!one_of(a.keep_aspect, {"stretch", "not_larger", "not_smaller"}))
    return unsupported("{}: keep_aspect_ratio_policy '{}' is not supported", node.label(), a.keep_aspect);
  return a;
}

Result<ResizePlan> plan_resize(const ir::Node& node, const ResizeAttrs& a, const std::vector<int64_t>& in,
                               const Tensor* scales, bool scales_unknown, const Tensor* sizes, bool sizes_unknown,
                               const Tensor* roi) {
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<int64_t> axes;
  for (int64_t ax : a.axes) {
    if (ax < -r || ax >= r)
      return invalid_model("{}: axis {} is out of range for an input of rank {}", node.label(), ax, r);
    if (ax < 0) ax += r;
    if (std::find(axes.begin(), axes.end(), ax) != axes.end())
      return invalid_model("{}: axes {} repeat axis {}", node.label(), dims_to_string(a.axes), ax);
    axes.push_back(ax);
  }
  if (a.axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  const size_t na = axes.size();

  ResizePlan p;
  p.out = in;
  p.scales.assign(r, 1.0);
  p.roi_start.assign(r, 0.0);
  p.roi_end.assign(r, 1.0);
  if (scales && scales->numel() == 0) scales = nullptr;
  if (sizes && sizes->numel() == 0) sizes = nullptr;
  const bool have_scales = scales || scales_unknown || !a.scales_attr.empty();
  const bool have_sizes = sizes || sizes_unknown;
  if (have_scales && have_sizes)
    return invalid_model("{}: only one of 'scales' and 'sizes' may be given (pass the other as empty)", node.label());
  if (!have_scales && !have_sizes) return invalid_model("{}: needs 'scales' or 'sizes'", node.label());
  if (roi && roi->numel() > 0 && a.coord == "tf_crop_and_resize") {
    if (static_cast<size_t>(roi->numel()) != 2 * na)
      return invalid_model("{}: roi has {} values but needs {} (start and end per resized axis)", node.label(),
                           roi->numel(), 2 * na);
    for (size_t i = 0; i < na; ++i) {
      p.roi_start[axes[i]] = roi->get_as_double(static_cast<int64_t>(i));
      p.roi_end[axes[i]] = roi->get_as_double(static_cast<int64_t>(na + i));
    }
  }
  if (scales_unknown || sizes_unknown) {
    for (int64_t ax : axes) p.out[ax] = -1, p.scales[ax] = NAN;
    p.out_float.assign(r, NAN);
    return p;
  }
  if (have_scales) {
    std::vector<double> v;
    if (scales) {
      for (int64_t i = 0; i < scales->numel(); ++i) v.push_back(scales->get_as_double(i));
    } else {
      v.assign(a.scales_attr.begin(), a.scales_attr.end());
    }
    if (v.size() != na)
      return invalid_model("{}: scales has {} values but the input has {} {}", node.label(), v.size(), na,
                           a.axes.empty() ? "dims" : "axes to resize");
    for (size_t i = 0; i < na; ++i) {
      if (!(v[i] > 0)) return invalid_model("{}: scale {} for axis {} must be positive", node.label(), v[i], axes[i]);
      const int64_t ax = axes[i];
      p.scales[ax] = v[i];
      // The reference multiplies in double: floor(in * scale).
      if (in[ax] >= 0) p.out[ax] = static_cast<int64_t>(std::floor(static_cast<double>(in[ax]) * v[i]));
      else if (v[i] != 1.0) p.out[ax] = -1;
    }
    p.out_float.resize(r);
    for (int64_t i = 0; i < r; ++i) p.out_float[i] = p.scales[i] * static_cast<double>(in[i]);
    return p;
  }
  std::vector<int64_t> s = sizes->to_int_vector();
  if (s.size() != na)
    return invalid_model("{}: sizes has {} values but the input has {} {}", node.label(), s.size(), na,
                         a.axes.empty() ? "dims" : "axes to resize");
  for (size_t i = 0; i < na; ++i) {
    if (s[i] < 0) return invalid_model("{}: sizes {} has a negative size", node.label(), dims_to_string(s));
    if (in[axes[i]] == 0 && s[i] != 0)
      return invalid_model("{}: cannot resize the empty axis {} to size {}", node.label(), axes[i], s[i]);
  }
  bool all_known = true;
  for (int64_t ax : axes) all_known = all_known && in[ax] >= 0;
  if (a.keep_aspect != "stretch") {
    if (!all_known) {
      for (int64_t ax : axes) p.out[ax] = -1, p.scales[ax] = NAN;
    } else {
      // One scale for every resized axis: the largest that fits (not_larger) or the smallest that covers.
      double scale = a.keep_aspect == "not_larger" ? INFINITY : 0.0;
      for (size_t i = 0; i < na; ++i) {
        const double si = static_cast<double>(s[i]) / static_cast<double>(in[axes[i]]);
        scale = a.keep_aspect == "not_larger" ? std::min(scale, si) : std::max(scale, si);
      }
      for (int64_t ax : axes) {
        p.scales[ax] = scale;
        p.out[ax] = static_cast<int64_t>(scale * static_cast<double>(in[ax]) + 0.5);
      }
    }
  } else {
    for (size_t i = 0; i < na; ++i) {
      const int64_t ax = axes[i];
      p.out[ax] = s[i];
      p.scales[ax] = in[ax] > 0 ? static_cast<double>(s[i]) / static_cast<double>(in[ax]) : (in[ax] == 0 ? 1.0 : NAN);
    }
  }
  p.out_float.resize(r);
  for (int64_t i = 0; i < r; ++i) {
    const bool sized = a.keep_aspect == "stretch" && std::find(axes.begin(), axes.end(), i) != axes.end();
    p.out_float[i] = sized ? static_cast<double>(p.out[i]) : p.scales[i] * static_cast<double>(in[i]);
  }
  return p;
}

namespace {

// An optional float/int input: its value when known and non-empty; `unknown` when present but not known
// (an input statically known to be empty counts as absent).
const Tensor* optional_input(const InferContext& ctx, int i, bool& unknown) {
  unknown = false;
  if (i < 0 || !ctx.has_input(i)) return nullptr;
  if (const Tensor* t = ctx.input_value(i)) return t->numel() == 0 ? nullptr : t;
  const Shape& s = ctx.input_shape(i);
  if (s.is_static() && num_elements(s.static_dims()) == 0) return nullptr;
  unknown = true;
  return nullptr;
}

Status infer_resize(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(ResizeAttrs a, read_resize_attrs(ctx.node(), ctx.opset()));
  const DType dt = ctx.input_dtype(0);
  if (a.sizes_input >= 0 && ctx.has_input(a.sizes_input) && ctx.input_dtype(a.sizes_input) != DType::kI64)
    return ctx.error("sizes must be int64, got {}", dtype_name(ctx.input_dtype(a.sizes_input)));
  if (a.scales_input >= 0 && ctx.has_input(a.scales_input) && !is_float(ctx.input_dtype(a.scales_input)))
    return ctx.error("scales must be float, got {}", dtype_name(ctx.input_dtype(a.scales_input)));
  if (a.mode != "nearest" && !is_float(dt) && !is_integer(dt))
    return ctx.error("mode '{}' needs a numeric input, got {}", a.mode, dtype_name(dt));
  const Shape& x = ctx.input_shape(0);
  if (!x.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  bool scales_unknown = false, sizes_unknown = false, roi_unknown = false;
  const Tensor* scales = optional_input(ctx, a.scales_input, scales_unknown);
  const Tensor* sizes = optional_input(ctx, a.sizes_input, sizes_unknown);
  const Tensor* roi = optional_input(ctx, a.roi_input, roi_unknown);
  std::vector<int64_t> in;
  for (const Dim& d : x.dims()) in.push_back(d.is_static() ? d.value() : -1);
  KILN_ASSIGN_OR_RETURN(ResizePlan p, plan_resize(ctx.node(), a, in, scales, scales_unknown, sizes, sizes_unknown, roi));
  std::vector<Dim> out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (p.out[i] >= 0) out.push_back(Dim(p.out[i]));
    else if (p.scales[i] == 1.0) out.push_back(x[i]);  // an untouched symbolic axis keeps its name
    else out.push_back(Dim::unknown());
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_resize(OpRegistry& r) {
  r.add({"Resize", 1, 4, 1, 1, infer_resize});
  r.add({"Upsample", 1, 2, 1, 1, infer_resize});
}

}  // namespace kiln::ops
