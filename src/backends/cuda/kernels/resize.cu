// Resize / Upsample, nearest and linear (n-linear over every resized axis), for the coordinate modes
// half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric and tf_half_pixel_for_nn.
// The output size and per-axis scales come from ops/resize.h's plan (the same one inference and the CPU
// kernel use); each thread maps its output coordinate to at most two taps per axis exactly as the CPU
// reference does and sums them in double in the CPU's order, with every multiply and add rounded on its own
// (no fused multiply-add), so the two agree to the bit. Cubic, antialiased linear, exclude_outside and
// tf_crop_and_resize stay on the CPU reference.
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/shape_limits.h"
#include "backends/cuda/kernels/copy_common.cuh"
#include "ops/resize.h"

namespace kiln::cuda {

namespace {

using copy::kMaxDims;

enum class Coord : int {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelNN
};
enum class Nearest : int { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

std::optional<Coord> coord_of(const std::string& s) {
  if (s == "half_pixel") return Coord::kHalfPixel;
  if (s == "half_pixel_symmetric") return Coord::kHalfPixelSymmetric;
  if (s == "pytorch_half_pixel") return Coord::kPytorchHalfPixel;
  if (s == "align_corners") return Coord::kAlignCorners;
  if (s == "asymmetric") return Coord::kAsymmetric;
  if (s == "tf_half_pixel_for_nn") return Coord::kTfHalfPixelNN;
  return std::nullopt;
}

Nearest nearest_of(const std::string& s) {
  if (s == "round_prefer_ceil") return Nearest::kRoundPreferCeil;
  if (s == "floor") return Nearest::kFloor;
  if (s == "ceil") return Nearest::kCeil;
  return Nearest::kRoundPreferFloor;
}

struct ResizeParams {
  int rank = 0;
  Coord coord = Coord::kHalfPixel;
  Nearest nearest = Nearest::kRoundPreferFloor;
  bool linear = false;
  // Per axis, outermost first.
  int64_t in[kMaxDims] = {}, out[kMaxDims] = {}, in_strides[kMaxDims] = {};
  double scale[kMaxDims] = {}, out_float[kMaxDims] = {};
};

__device__ __forceinline__ double source_coord(const ResizeParams& p, int d, int64_t x) {
  const double s = p.scale[d], of = p.out_float[d], xd = static_cast<double>(x);
  const double len = static_cast<double>(p.in[d]);
  switch (p.coord) {
    case Coord::kHalfPixel:
      return __dadd_rn(__ddiv_rn(__dadd_rn(xd, 0.5), s), -0.5);
    case Coord::kHalfPixelSymmetric: {
      const double adjustment = __ddiv_rn(static_cast<double>(p.out[d]), of);
      const double offset = __dmul_rn(__ddiv_rn(len, 2.0), __dadd_rn(1.0, -adjustment));
      return __dadd_rn(__dadd_rn(offset, __ddiv_rn(__dadd_rn(xd, 0.5), s)), -0.5);
    }
    case Coord::kPytorchHalfPixel:
      return p.out[d] > 1 ? __dadd_rn(__ddiv_rn(__dadd_rn(xd, 0.5), s), -0.5) : 0.0;
    case Coord::kAlignCorners:
      return of == 1.0 ? 0.0 : __ddiv_rn(__dmul_rn(xd, __dadd_rn(len, -1.0)), __dadd_rn(of, -1.0));
    case Coord::kAsymmetric:
      return __ddiv_rn(xd, s);
    case Coord::kTfHalfPixelNN:
      return __ddiv_rn(__dadd_rn(xd, 0.5), s);
  }
  return 0.0;
}

template <class T>
__device__ __forceinline__ double to_double(T v) {
  if constexpr (std::is_same_v<T, __half>)
    return static_cast<double>(__half2float(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return static_cast<double>(__bfloat162float(v));
  else
    return static_cast<double>(v);
}

template <class T>
__device__ __forceinline__ T from_double(double v) {
  if constexpr (std::is_same_v<T, __half>)
    return __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __float2bfloat16_rn(static_cast<float>(v));
  else if constexpr (std::is_floating_point_v<T>)
    return static_cast<T>(v);
  else {
    v = rint(v);
    v = fmin(fmax(v, static_cast<double>(std::numeric_limits<T>::lowest())),
             static_cast<double>(std::numeric_limits<T>::max()));
    return static_cast<T>(v);
  }
}

template <class T, class I>
__global__ void __launch_bounds__(copy::kThreads)
    resize_kernel(const T* __restrict__ x, T* __restrict__ y, I n, copy::Coords<I> coords, ResizeParams p) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t c[kMaxDims];
    coords.of(i, c);  // innermost first
    int64_t off[kMaxDims][2];
    double w[kMaxDims][2];
    int cnt[kMaxDims];
    int combos = 1;
    for (int d = 0; d < p.rank; ++d) {
      const double xo = source_coord(p, d, c[p.rank - 1 - d]);
      // The reference prefers the pixel strictly left of x: an integral x has base x - 1 and ratio 1.
      const double fl = floor(xo);
      const int64_t base = static_cast<int64_t>(fl) - (fl == xo ? 1 : 0);
      const double ratio = xo - static_cast<double>(base);
      const int64_t last = p.in[d] - 1;
      cnt[d] = 0;
      if (!p.linear) {
        bool ceil_side = true;
        if (ratio < 1.0) {
          switch (p.nearest) {
            case Nearest::kRoundPreferFloor:
              ceil_side = ratio > 0.5;
              break;
            case Nearest::kRoundPreferCeil:
              ceil_side = ratio >= 0.5;
              break;
            case Nearest::kFloor:
              ceil_side = false;
              break;
            case Nearest::kCeil:
              ceil_side = true;
              break;
          }
        }
        const int64_t at = min(max(base + (ceil_side ? 1 : 0), int64_t{0}), last);
        off[d][0] = at * p.in_strides[d];
        w[d][0] = 1.0;
        cnt[d] = 1;
      } else {
        const double ws[2] = {1.0 - ratio, ratio};
        for (int k = 0; k < 2; ++k) {
          if (ws[k] == 0) continue;  // the reference drops zero-weight taps (0 * inf would be NaN)
          const int64_t at = min(max(base + k, int64_t{0}), last);
          off[d][cnt[d]] = at * p.in_strides[d];
          w[d][cnt[d]] = ws[k];
          ++cnt[d];
        }
      }
      combos *= cnt[d];
    }
    double acc = 0;
    for (int m = 0; m < combos; ++m) {  // the last axis varies fastest, as in the reference
      int rest = m;
      int pick[kMaxDims];
      for (int d = p.rank - 1; d >= 0; --d) {
        pick[d] = rest % cnt[d];
        rest /= cnt[d];
      }
      double wo = 1.0;
      int64_t o = 0;
      for (int d = 0; d < p.rank; ++d) {
        o += off[d][pick[d]];
        if (d + 1 < p.rank) wo = __dmul_rn(wo, w[d][pick[d]]);
      }
      const double wt = __dmul_rn(wo, w[p.rank - 1][pick[p.rank - 1]]);
      acc = __dadd_rn(acc, __dmul_rn(wt, to_double(x[o])));
    }
    y[i] = from_double<T>(acc);
  }
}

template <class Fn>
std::optional<Status> dispatch_resize(DType dt, Fn&& fn) {
  return ew::dispatch_in<DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kU8, DType::kI8, DType::kI32,
                         DType::kI64>(dt, fn);
}

bool resize_supported(const ir::Node& node, const std::vector<DType>& d) {
  if (d.empty() || !dispatch_resize(d[0], [](auto) { return Status(); })) return false;
  // Opset only changes which attributes are read; 11 reads the full set the CPU plan understands for Resize.
  auto a = ops::read_resize_attrs(node, node.op_type == "Upsample" ? 9 : 11);
  if (!a.ok()) return false;
  if (node.has_attr("antialias") && node.attr_int("antialias", 0) != 0 && a->mode != "nearest") return false;
  if (a->mode == "linear" && a->exclude_outside) return false;
  return (a->mode == "nearest" || a->mode == "linear") && coord_of(a->coord).has_value();
}

Status run_resize(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(ops::ResizeAttrs a, ops::read_resize_attrs(ctx.node(), ctx.opset()));
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  auto opt = [&](int i) { return i >= 0 && ctx.has_input(i) ? ctx.host_input(i) : nullptr; };
  KILN_ASSIGN_OR_RETURN(ops::ResizePlan plan,
                        ops::plan_resize(ctx.node(), a, x.dims, opt(a.scales_input), false,
                                         opt(a.sizes_input), false, opt(a.roi_input)));
  const int64_t n = y.numel();
  if (n == 0) return Status();
  if (x.rank() == 0) {
    KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, y.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
    return Status();
  }
  if (x.rank() > static_cast<size_t>(kMaxDims)) return ctx.error("rank {} is above {}", x.rank(), kMaxDims);
  const auto coord = coord_of(a.coord);
  if (!coord || (a.mode != "nearest" && a.mode != "linear") || (a.antialias && a.mode != "nearest") ||
      (a.exclude_outside && a.mode == "linear"))
    return ctx.error("mode '{}' with coordinate mode '{}' is not handled by the CUDA kernel", a.mode,
                     a.coord);
  ResizeParams p;
  p.rank = static_cast<int>(x.rank());
  p.coord = *coord;
  p.nearest = nearest_of(a.nearest_mode);
  p.linear = a.mode == "linear";
  const std::vector<int64_t> s = copy::strides_of(x.dims);
  for (int d = 0; d < p.rank; ++d) {
    if (x.dims[d] == 0) return ctx.error("cannot resize the empty axis {} of {}", d, dims_to_string(x.dims));
    p.in[d] = x.dims[d];
    p.out[d] = y.dims[d];
    p.in_strides[d] = s[d];
    p.scale[d] = plan.scales[d];
    p.out_float[d] = plan.out_float[d];
  }
  std::optional<Status> st = dispatch_resize(x.dtype, [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x.data);
    T* py = static_cast<T*>(y.data);
    if (copy::fits32(n)) {
      resize_kernel<T, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
          px, py, static_cast<uint32_t>(n), copy::make_coords<uint32_t>(y.dims), p);
    } else {
      resize_kernel<T, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
          px, py, static_cast<uint64_t>(n), copy::make_coords<uint64_t>(y.dims), p);
    }
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(x.dtype));
}

}  // namespace

std::string resize_shape_limit(const ir::Node&, const std::vector<InputFact>& in) {
  if (in.empty() || !in[0].present || in[0].dims.size() <= static_cast<size_t>(kMaxDims)) return "";
  return fmt::format("rank {} (the GPU kernel takes at most {})", in[0].dims.size(), kMaxDims);
}

// roi, scales, sizes (Resize-11+) or scales (Resize-10, Upsample-9) on the host: they size the output.
void register_cuda_resize(KernelTable& t) {
  t.add({"Resize", run_resize, resize_supported, 0b1110});
  t.add({"Upsample", run_resize, resize_supported, 0b10});
}

}  // namespace kiln::cuda
