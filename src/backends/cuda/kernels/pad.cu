// Pad (constant, reflect, edge, wrap; negative pads crop), by element width. The pads, constant value and
// axes inputs are read on the host (ops/pad.h resolves them as inference and the CPU kernel do); every output
// element maps each coordinate back into the input or to the constant.
#include <cstring>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"
#include "ops/pad.h"
#include "kiln/half.h"

namespace kiln::cuda {

namespace {

using copy::kMaxDims;

enum class Mode : int { kConstant, kReflect, kEdge, kWrap };

struct PadParams {
  Mode mode = Mode::kConstant;
  int64_t in_dims[kMaxDims] = {};  // innermost first
  int64_t begin[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
};

// Same mapping as the CPU reference: an index into [0, n), or -1 for the constant.
__device__ __forceinline__ int64_t source_index(Mode mode, int64_t j, int64_t n) {
  if (j >= 0 && j < n) return j;
  switch (mode) {
    case Mode::kConstant:
      return -1;
    case Mode::kEdge:
      return j < 0 ? 0 : n - 1;
    case Mode::kWrap:
      return ((j % n) + n) % n;
    case Mode::kReflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      j = ((j % period) + period) % period;
      return j < n ? j : period - j;
    }
  }
  return -1;
}

template <class U, class I>
__global__ void __launch_bounds__(copy::kThreads)
    pad_kernel(const U* __restrict__ src, U* __restrict__ dst, I n, copy::Coords<I> coords, PadParams p,
               U fill) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t c[kMaxDims];
    coords.of(i, c);
    int64_t off = 0;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) {
      if (d >= coords.rank || off < 0) continue;
      const int64_t j = source_index(p.mode, c[d] - p.begin[d], p.in_dims[d]);
      off = j < 0 ? -1 : off + j * p.strides[d];
    }
    dst[i] = off < 0 ? fill : src[off];
  }
}

Status run_pad(KernelContext& ctx) {
  const DeviceTensor& in = ctx.input(0);
  DeviceTensor& out = ctx.output(0);
  const std::string m = ctx.node().attr_string("mode", "constant");
  const Mode mode = m == "reflect" ? Mode::kReflect
                    : m == "edge"  ? Mode::kEdge
                    : m == "wrap"  ? Mode::kWrap
                                   : Mode::kConstant;
  const int64_t rank = static_cast<int64_t>(in.rank());
  if (rank > kMaxDims) return ctx.error("rank {} is above {}", rank, kMaxDims);
  std::vector<int64_t> begin, end;
  const Tensor* pads = ctx.opset() >= 11 ? ctx.host_input(1) : nullptr;
  if (ctx.opset() >= 11 && !pads) return ctx.error("pads is a required input");
  const Tensor* axes = ctx.has_input(3) ? ctx.host_input(3) : nullptr;
  const std::string err = ops::pad_amounts(ctx.node(), ctx.opset(), pads, axes, rank, begin, end);
  if (!err.empty()) return ctx.error("{}", err);
  const int64_t n = out.numel();
  if (n == 0) return Status();
  for (int64_t d = 0; d < rank; ++d)
    if (in.dims[d] == 0 && mode != Mode::kConstant)
      return ctx.error("{} padding needs input values, but axis {} of the input {} is empty", m, d,
                       dims_to_string(in.dims));
  // The fill value as raw bytes of the data's dtype (opset 11+: the constant_value input, else the
  // attribute).
  uint64_t fill_bits = 0;
  const size_t es = dtype_size(in.dtype);
  if (ctx.opset() >= 11) {
    const Tensor* v = ctx.has_input(2) ? ctx.host_input(2) : nullptr;
    if (v && v->numel() > 0) {
      if (v->dtype() != in.dtype)
        return ctx.error("constant_value {} must have the data's dtype {}", v->describe(),
                         dtype_name(in.dtype));
      std::memcpy(&fill_bits, v->raw(), es);
    }
  } else {
    const float f = ctx.node().attr_float("value", 0.f);
    const double dv = f;
    switch (in.dtype) {
      case DType::kF32:
        std::memcpy(&fill_bits, &f, 4);
        break;
      case DType::kF64:
        std::memcpy(&fill_bits, &dv, 8);
        break;
      case DType::kF16:
        fill_bits = float_to_half(f);
        break;
      case DType::kBF16:
        fill_bits = float_to_bf16(f);
        break;
      case DType::kBool:
        fill_bits = f != 0.f;
        break;
      default: {  // integers: truncated, then the low bytes (two's complement)
        const int64_t iv = static_cast<int64_t>(f);
        std::memcpy(&fill_bits, &iv, 8);
      }
    }
  }
  PadParams p;
  p.mode = mode;
  const std::vector<int64_t> s = copy::strides_of(in.dims);
  for (int64_t d = 0; d < rank; ++d) {
    p.in_dims[rank - 1 - d] = in.dims[d];
    p.begin[rank - 1 - d] = begin[d];
    p.strides[rank - 1 - d] = s[d];
  }
  std::optional<Status> st = ew::dispatch_bytes(es, [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    U fill;
    std::memcpy(&fill, &fill_bits, sizeof(U));
    const U* src = static_cast<const U*>(in.data);
    U* dst = static_cast<U*>(out.data);
    if (copy::fits32(n)) {
      pad_kernel<U, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
          src, dst, static_cast<uint32_t>(n), copy::make_coords<uint32_t>(out.dims), p, fill);
    } else {
      pad_kernel<U, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, ctx.stream()>>>(
          src, dst, static_cast<uint64_t>(n), copy::make_coords<uint64_t>(out.dims), p, fill);
    }
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(in.dtype));
}

}  // namespace

// pads, constant_value and axes (opset 11+) on the host.
void register_cuda_pad(KernelTable& t) {
  t.add({"Pad", run_pad, copy::movable_first, 0b1110});
}

}  // namespace kiln::cuda
