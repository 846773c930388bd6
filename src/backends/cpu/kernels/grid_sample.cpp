// GridSample over N-D inputs: each output point maps its grid coordinate to per-axis taps (1 nearest, 2 linear,
// 4 cubic), whose indices are then resolved by the padding mode, as in onnxruntime and the ONNX reference.
#include <cmath>
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

enum class Pad { kZeros, kBorder, kReflection };
enum class Mode { kNearest, kLinear, kCubic };

// Folds x back into [lo, hi] by repeated reflection at the bounds.
double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const int64_t n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const int64_t n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

struct AxisSampler {
  int64_t size = 0;
  double lo = 0, hi = 0;  // reflection bounds
  // Input index for a tap, or -1 when it reads zero padding.
  int64_t resolve(int64_t i, Pad pad) const {
    if (i >= 0 && i < size) return i;
    if (pad == Pad::kZeros) return -1;
    if (pad == Pad::kBorder) return std::clamp<int64_t>(i, 0, size - 1);
    return std::clamp<int64_t>(static_cast<int64_t>(reflect(static_cast<double>(i), lo, hi)), 0, size - 1);
  }
};

struct Taps {
  int64_t index[4];
  double weight[4];
  int count = 0;
};

Taps axis_taps(double x, Mode mode, Pad pad, const AxisSampler& s) {
  Taps t;
  if (mode == Mode::kNearest) x = std::nearbyint(x);
  // Out-of-range coordinates are first moved inside for border and reflection padding.
  if (x < s.lo || x > s.hi) {
    if (pad == Pad::kBorder) x = std::clamp(x, 0.0, static_cast<double>(s.size - 1));
    else if (pad == Pad::kReflection) x = reflect(x, s.lo, s.hi);
  }
  if (mode == Mode::kNearest) {
    t.index[0] = static_cast<int64_t>(std::nearbyint(x));
    t.weight[0] = 1;
    t.count = 1;
  } else if (mode == Mode::kLinear) {
    const double f = std::floor(x), r = x - f;
    t.index[0] = static_cast<int64_t>(f);
    t.index[1] = t.index[0] + 1;
    t.weight[0] = 1 - r;
    t.weight[1] = r;
    t.count = 2;
  } else {
    const double f = std::floor(x), r = x - f, A = -0.75;
    const double r1 = r + 1, r2 = 1 - r, r3 = 2 - r;
    t.weight[0] = ((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A;
    t.weight[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
    t.weight[2] = ((A + 2) * r2 - (A + 3)) * r2 * r2 + 1;
    t.weight[3] = ((A * r3 - 5 * A) * r3 + 8 * A) * r3 - 4 * A;
    for (int i = 0; i < 4; ++i) t.index[i] = static_cast<int64_t>(f) - 1 + i;
    t.count = 4;
  }
  for (int i = 0; i < t.count; ++i) t.index[i] = s.resolve(t.index[i], pad);
  return t;
}

template <class T, class G>
void grid_sample(const Tensor& x, const Tensor& grid, Tensor& y, Mode mode, Pad pad, bool align) {
  const size_t r = x.rank() - 2;
  const int64_t n = x.dim(0), c = x.dim(1);
  const std::vector<int64_t> in(x.dims().begin() + 2, x.dims().end());
  const int64_t in_size = num_elements(in), out_size = grid.numel() / std::max<int64_t>(n * r, 1);
  const auto strides = strides_of(in);
  std::vector<AxisSampler> axes(r);
  for (size_t d = 0; d < r; ++d) {
    axes[d].size = in[d];
    axes[d].lo = align ? 0.0 : -0.5;
    axes[d].hi = align ? static_cast<double>(in[d] - 1) : static_cast<double>(in[d]) - 0.5;
  }
  const T* px = x.data<T>();
  const G* pg = grid.data<G>();
  T* py = y.data<T>();
  std::vector<Taps> taps(r);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < out_size; ++o) {
      const G* g = pg + (b * out_size + o) * static_cast<int64_t>(r);
      for (size_t d = 0; d < r; ++d) {
        // The grid lists coordinates innermost axis first (x, y, z).
        const double nx = static_cast<double>(g[r - 1 - d]), len = static_cast<double>(in[d]);
        const double xd = align ? (nx + 1) / 2 * (len - 1) : ((nx + 1) * len - 1) / 2;
        taps[d] = axis_taps(xd, mode, pad, axes[d]);
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        const T* plane = px + (b * c + ch) * in_size;
        auto sum = [&](auto&& self, size_t d, int64_t off, double w) -> double {
          if (d == r) return w * static_cast<double>(plane[off]);
          double s = 0;
          for (int k = 0; k < taps[d].count; ++k)
            if (taps[d].index[k] >= 0 && taps[d].weight[k] != 0)
              s += self(self, d + 1, off + taps[d].index[k] * strides[d], w * taps[d].weight[k]);
          return s;
        };
        const double v = sum(sum, 0, 0, 1.0);
        py[(b * c + ch) * out_size + o] = std::is_floating_point_v<T> ? static_cast<T>(v) : static_cast<T>(std::nearbyint(v));
      }
    }
}

Status run_grid_sample(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  const std::string m = ctx.node().attr_string("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  const std::string p = ctx.node().attr_string("padding_mode", "zeros");
  const Mode mode = m == "nearest" ? Mode::kNearest : (m == "bicubic" || m == "cubic") ? Mode::kCubic : Mode::kLinear;
  const Pad pad = p == "border" ? Pad::kBorder : p == "reflection" ? Pad::kReflection : Pad::kZeros;
  const bool align = ctx.node().attr_int("align_corners", 0) != 0;
  if (ctx.output(0).numel() == 0) return Status();
  for (int64_t d = 2; d < static_cast<int64_t>(x.rank()); ++d)
    if (x.dim(d) == 0) return ctx.error("cannot sample the empty input {}", dims_to_string(x.dims()));
  bool ok = false;
  dispatch_float(grid.dtype(), [&](auto gtag) {
    using G = typename decltype(gtag)::type;
    ok = dispatch_all(x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      grid_sample<T, G>(x, grid, ctx.output(0), mode, pad, align);
    });
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_grid_sample(KernelTable& t) { t.add({"GridSample", run_grid_sample}); }

}  // namespace kiln::cpu
