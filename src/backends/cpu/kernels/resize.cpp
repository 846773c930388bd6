// Resize / Upsample as separable N-D interpolation: each axis maps every output coordinate to a few weighted
// input taps (1 for nearest, 2 linear, 4 cubic, more with antialias), and an output element sums the product of
// its per-axis taps. This follows the ONNX reference implementation's neighbour and coefficient choices.
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "ops/conv_pool_attrs.h"
#include "ops/resize.h"

namespace kiln::cpu {

namespace {

struct Tap {
  int64_t offset;  // input index times the axis stride
  double weight;
};

// Per axis: taps[first[o] .. first[o + 1]) serve output coordinate o; outside[o] marks tf_crop_and_resize
// extrapolation.
struct AxisTaps {
  std::vector<size_t> first;
  std::vector<Tap> taps;
  std::vector<uint8_t> outside;
};

double source_coord(const ops::ResizeAttrs& a, const ops::ResizePlan& p, size_t axis, int64_t in, int64_t out,
                    int64_t x, bool& outside) {
  const double s = p.scales[axis], of = p.out_float[axis], xd = static_cast<double>(x);
  const double len = static_cast<double>(in);
  outside = false;
  if (a.coord == "half_pixel") return (xd + 0.5) / s - 0.5;
  if (a.coord == "half_pixel_symmetric") {
    const double adjustment = static_cast<double>(out) / of;
    const double offset = len / 2 * (1 - adjustment);
    return offset + (xd + 0.5) / s - 0.5;
  }
  if (a.coord == "pytorch_half_pixel") return out > 1 ? (xd + 0.5) / s - 0.5 : 0.0;
  if (a.coord == "align_corners") return of == 1.0 ? 0.0 : xd * (len - 1) / (of - 1);
  if (a.coord == "asymmetric") return xd / s;
  if (a.coord == "tf_half_pixel_for_nn") return (xd + 0.5) / s;
  // tf_crop_and_resize
  const double start = p.roi_start[axis], end = p.roi_end[axis];
  double xo = of == 1.0 ? (end - start) * (len - 1) / 2 : xd * (end - start) * (len - 1) / (of - 1);
  xo += start * (len - 1);
  outside = xo < 0 || xo > len - 1;
  return xo;
}

std::vector<double> cubic_coeffs(double ratio, double A) {
  const double r1 = ratio + 1, r2 = 1 - ratio, r3 = 2 - ratio;
  return {((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A, ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1,
          ((A + 2) * r2 - (A + 3)) * r2 * r2 + 1, ((A * r3 - 5 * A) * r3 + 8 * A) * r3 - 4 * A};
}

// Weights for taps base + start + i, given ratio = x - base in (0, 1].
std::vector<double> coefficients(const ops::ResizeAttrs& a, double ratio, double scale, int64_t& start) {
  const bool aa = a.antialias && scale < 1.0 && a.mode != "nearest";
  if (a.mode == "nearest") {
    bool ceil_side = true;
    if (ratio < 1.0) {
      if (a.nearest_mode == "round_prefer_floor") ceil_side = ratio > 0.5;
      else if (a.nearest_mode == "round_prefer_ceil") ceil_side = ratio >= 0.5;
      else ceil_side = a.nearest_mode == "ceil";
    }
    start = ceil_side ? 1 : 0;
    return {1.0};
  }
  std::vector<double> c;
  if (a.mode == "linear") {
    if (!aa) {
      start = 0;
      return {1 - ratio, ratio};
    }
    // Antialiasing stretches the triangle filter by 1 / scale.
    start = static_cast<int64_t>(std::floor(-1 / scale) + 1);
    for (int64_t i = start; i < 2 - start; ++i) c.push_back(std::clamp(1 - std::fabs((i - ratio) * scale), 0.0, 1.0));
  } else {
    if (!aa) {
      start = -1;
      return cubic_coeffs(ratio, a.cubic_a);
    }
    const double A = a.cubic_a;
    start = static_cast<int64_t>(std::floor(-2 / scale) + 1);
    for (int64_t i = start; i < 2 - start; ++i) {
      const double x = std::fabs(scale * (i - ratio)), x2 = x * x, x3 = x2 * x;
      c.push_back(x <= 1 ? (A + 2) * x3 - (A + 3) * x2 + 1 : x < 2 ? A * x3 - 5 * A * x2 + 8 * A * x - 4 * A : 0.0);
    }
  }
  double sum = 0;
  for (double v : c) sum += v;
  if (sum != 0)
    for (double& v : c) v /= sum;
  return c;
}

AxisTaps plan_axis(const ops::ResizeAttrs& a, const ops::ResizePlan& p, size_t axis, int64_t in, int64_t out,
                   int64_t stride) {
  AxisTaps t;
  t.outside.assign(out, 0);
  for (int64_t x = 0; x < out; ++x) {
    t.first.push_back(t.taps.size());
    bool outside = false;
    const double xo = source_coord(a, p, axis, in, out, x, outside);
    t.outside[x] = outside;
    if (outside) continue;
    // The reference prefers the pixel strictly left of x: an integral x has base x - 1 and ratio 1.
    const double fl = std::floor(xo);
    const int64_t base = static_cast<int64_t>(fl) - (fl == xo ? 1 : 0);
    int64_t start = 0;
    std::vector<double> c = coefficients(a, xo - static_cast<double>(base), p.scales[axis], start);
    if (a.exclude_outside && a.mode != "nearest") {
      double sum = 0;
      for (size_t i = 0; i < c.size(); ++i) {
        const int64_t idx = base + start + static_cast<int64_t>(i);
        if (idx < 0 || idx >= in) c[i] = 0;
        sum += c[i];
      }
      if (sum != 0)
        for (double& v : c) v /= sum;
    }
    for (size_t i = 0; i < c.size(); ++i) {
      if (c[i] == 0) continue;
      const int64_t idx = std::clamp<int64_t>(base + start + static_cast<int64_t>(i), 0, in - 1);
      t.taps.push_back({idx * stride, c[i]});
    }
  }
  t.first.push_back(t.taps.size());
  return t;
}

template <class T>
T from_double(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    v = std::nearbyint(v);
    v = std::clamp(v, static_cast<double>(std::numeric_limits<T>::lowest()),
                   static_cast<double>(std::numeric_limits<T>::max()));
    return static_cast<T>(v);
  }
}

template <class T>
void resize(const Tensor& x, Tensor& y, const std::vector<AxisTaps>& axes, double extrapolation) {
  const size_t r = x.rank();
  const T* px = x.data<T>();
  T* py = y.data<T>();
  const auto& out = y.dims();
  const int64_t width = out[r - 1], rows = width == 0 ? 0 : y.numel() / width;
  const AxisTaps& last = axes[r - 1];
  const std::vector<int64_t> outer(out.begin(), out.end() - 1);
  std::vector<int64_t> o(r - 1, 0);
  // The outer axes' taps multiply out into (offset, weight) pairs once per output row; the innermost axis then
  // runs over them per column.
  std::vector<Tap> combos, next;
  for (int64_t row = 0; row < rows; ++row) {
    T* dst = py + row * width;
    bool outside = false;
    combos.assign(1, Tap{0, 1.0});
    for (size_t d = 0; d + 1 < r && !outside; ++d) {
      const AxisTaps& t = axes[d];
      outside = t.outside[o[d]];
      next.clear();
      for (const Tap& c : combos)
        for (size_t k = t.first[o[d]]; k < t.first[o[d] + 1]; ++k)
          next.push_back({c.offset + t.taps[k].offset, c.weight * t.taps[k].weight});
      combos.swap(next);
    }
    for (int64_t j = 0; j < width; ++j) {
      if (outside || last.outside[j]) {
        dst[j] = from_double<T>(extrapolation);
        continue;
      }
      double acc = 0;
      for (const Tap& c : combos)
        for (size_t k = last.first[j]; k < last.first[j + 1]; ++k)
          acc += c.weight * last.taps[k].weight * static_cast<double>(px[c.offset + last.taps[k].offset]);
      dst[j] = from_double<T>(acc);
    }
    ops::next_index(o, outer);
  }
}

Status run_resize(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(ops::ResizeAttrs a, ops::read_resize_attrs(ctx.node(), ctx.opset()));
  const Tensor& x = ctx.input(0);
  auto opt = [&](int i) { return i >= 0 && ctx.has_input(i) ? &ctx.input(i) : nullptr; };
  KILN_ASSIGN_OR_RETURN(ops::ResizePlan p, ops::plan_resize(ctx.node(), a, x.dims(), opt(a.scales_input), false,
                                                            opt(a.sizes_input), false, opt(a.roi_input)));
  Tensor& y = ctx.output(0);
  if (y.numel() == 0) return Status();
  if (x.rank() == 0) {
    ctx.set_output(0, x);
    return Status();
  }
  const auto strides = strides_of(x.dims());
  std::vector<AxisTaps> axes;
  for (size_t d = 0; d < x.rank(); ++d) axes.push_back(plan_axis(a, p, d, x.dim(d), y.dim(d), strides[d]));
  bool ok = dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    resize<T>(x, y, axes, a.extrapolation);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_resize(KernelTable& t) {
  t.add({"Resize", run_resize});
  t.add({"Upsample", run_resize});
}

}  // namespace kiln::cpu
