// RoiAlign: each output bin averages (or maxes) sampling_ratio^2 bilinear samples inside its part of the roi,
// following onnxruntime's sample placement and out-of-range rules.
#include <algorithm>
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

struct Sample {
  int64_t pos[4] = {0, 0, 0, 0};  // y_low*W+x_low, y_low*W+x_high, y_high*W+x_low, y_high*W+x_high
  double w[4] = {0, 0, 0, 0};
};

Sample bilinear_sample(double y, double x, int64_t h, int64_t wd) {
  Sample s;
  if (y < -1.0 || y > static_cast<double>(h) || x < -1.0 || x > static_cast<double>(wd)) return s;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
  if (y_low >= h - 1) y_high = y_low = h - 1, y = static_cast<double>(y_low);
  else y_high = y_low + 1;
  if (x_low >= wd - 1) x_high = x_low = wd - 1, x = static_cast<double>(x_low);
  else x_high = x_low + 1;
  const double ly = y - static_cast<double>(y_low), lx = x - static_cast<double>(x_low), hy = 1 - ly, hx = 1 - lx;
  s.pos[0] = y_low * wd + x_low;
  s.pos[1] = y_low * wd + x_high;
  s.pos[2] = y_high * wd + x_low;
  s.pos[3] = y_high * wd + x_high;
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  return s;
}

template <class T>
Status roi_align(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  const Tensor& idx = ctx.input(2);
  Tensor& y = ctx.output(0);
  const auto& node = ctx.node();
  const bool max_mode = node.attr_string("mode", "avg") == "max";
  const bool half_pixel =
      node.attr_string("coordinate_transformation_mode", ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel") ==
      "half_pixel";
  const int64_t oh = y.dim(2), ow = y.dim(3), sampling = node.attr_int("sampling_ratio", 0);
  const double scale = node.attr_float("spatial_scale", 1.f), offset = half_pixel ? 0.5 : 0.0;
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), num_rois = rois.dim(0);
  const T* px = x.data<T>();
  const T* pr = rois.data<T>();
  const int64_t* pi = idx.data<int64_t>();
  T* py = y.data<T>();
  for (int64_t r = 0; r < num_rois; ++r) {
    const int64_t b = pi[r];
    if (b < 0 || b >= n) return ctx.error("batch index {} of roi {} is outside the batch of {}", b, r, n);
    const double x1 = pr[r * 4] * scale - offset, y1 = pr[r * 4 + 1] * scale - offset;
    const double x2 = pr[r * 4 + 2] * scale - offset, y2 = pr[r * 4 + 3] * scale - offset;
    double roi_w = x2 - x1, roi_h = y2 - y1;
    if (!half_pixel) roi_w = std::max(roi_w, 1.0), roi_h = std::max(roi_h, 1.0);  // legacy: rois at least 1x1
    const double bin_h = roi_h / static_cast<double>(oh), bin_w = roi_w / static_cast<double>(ow);
    const int64_t grid_h = sampling > 0 ? sampling : static_cast<int64_t>(std::ceil(roi_h / static_cast<double>(oh)));
    const int64_t grid_w = sampling > 0 ? sampling : static_cast<int64_t>(std::ceil(roi_w / static_cast<double>(ow)));
    const double count = static_cast<double>(std::max<int64_t>(grid_h * grid_w, 1));
    for (int64_t ph = 0; ph < oh; ++ph)
      for (int64_t pw = 0; pw < ow; ++pw) {
        std::vector<Sample> samples;
        for (int64_t iy = 0; iy < grid_h; ++iy) {
          const double sy = y1 + ph * bin_h + (iy + 0.5) * bin_h / static_cast<double>(grid_h);
          for (int64_t ix = 0; ix < grid_w; ++ix) {
            const double sx = x1 + pw * bin_w + (ix + 0.5) * bin_w / static_cast<double>(grid_w);
            samples.push_back(bilinear_sample(sy, sx, h, wd));
          }
        }
        for (int64_t ch = 0; ch < c; ++ch) {
          const T* plane = px + (b * c + ch) * h * wd;
          double acc = 0;
          bool first = true;
          for (const Sample& s : samples) {
            if (max_mode) {
              // onnxruntime's max mode: the largest weighted corner of each sample.
              double v = s.w[0] * plane[s.pos[0]];
              for (int k = 1; k < 4; ++k) v = std::max(v, s.w[k] * static_cast<double>(plane[s.pos[k]]));
              acc = first ? v : std::max(acc, v);
              first = false;
            } else {
              for (int k = 0; k < 4; ++k) acc += s.w[k] * static_cast<double>(plane[s.pos[k]]);
            }
          }
          py[((r * c + ch) * oh + ph) * ow + pw] = static_cast<T>(max_mode ? acc : acc / count);
        }
      }
  }
  return Status();
}

Status run_roi_align(KernelContext& ctx) {
  Status st;
  bool ok = dispatch_float(ctx.input(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    st = roi_align<T>(ctx);
  });
  if (!ok) return ctx.unsupported("dtype {} is not supported", dtype_name(ctx.input(0).dtype()));
  return st;
}

}  // namespace

void register_cpu_roi_align(KernelTable& t) { t.add({"RoiAlign", run_roi_align}); }

}  // namespace kiln::cpu
