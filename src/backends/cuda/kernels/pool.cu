// MaxPool (without the Indices output) and AveragePool over N-D windows, f32/f16/bf16. The window (pads,
// auto_pad, ceil_mode) is resolved by ops::read_window / window_output_size, exactly as inference and the CPU
// reference do.
//  - cudnnPoolingForward when cuDNN expresses the window exactly: 1-D (as 2-D), 2-D or 3-D, no dilation,
//    symmetric pads and the floor-mode output size (ceil_mode that adds no window is fine). Max pooling
//    ignores the padding and propagates NaN; averages divide by the in-input count (count_include_pad=0) or the
//    full window (count_include_pad=1, every window lies in the padded input then).
//  - Otherwise (asymmetric or SAME pads, windows added by ceil_mode, dilations, more spatial dims) a direct
//    kernel that mirrors the CPU reference: one thread per output, f32 accumulation; with count_include_pad the
//    divisor counts the taps inside the padded input, so windows running past the end padding count less.
#include <cfloat>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/conv_pool_common.cuh"
#include "ops/conv_pool_attrs.h"

namespace kiln::cuda {

namespace {

using convpool::kMaxSpatial;
using convpool::kThreads;
using convpool::load_f;
using convpool::store_f;
using convpool::WindowArgs;

struct PoolArgs {
  WindowArgs win;
  int64_t total = 0;  // planes * out_size
  bool include_pad = false;
};

template <int NSP, bool kMax, class T>
__global__ void pool_direct(const T* __restrict__ x, T* __restrict__ y, PoolArgs a) {
  const WindowArgs& g = a.win;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < a.total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rem = idx;
    int64_t start[NSP];
#pragma unroll
    for (int d = NSP - 1; d >= 0; --d) {
      const int64_t o = rem % g.out[d];
      rem /= g.out[d];
      start[d] = o * g.stride[d] - g.pad_begin[d];
    }
    const T* xp = x + rem * g.in_size;  // rem is the (n, c) plane
    int64_t kidx[NSP];
#pragma unroll
    for (int d = 0; d < NSP; ++d) kidx[d] = 0;
    float best = -FLT_MAX, acc = 0.f;
    bool found = false;
    int64_t valid = 0, padded = 0;
    for (int64_t kf = 0; kf < g.ksize; ++kf) {
      int64_t off = 0;
      bool inside = true, in_padded = true;
#pragma unroll
      for (int d = 0; d < NSP; ++d) {
        const int64_t pos = start[d] + kidx[d] * g.dil[d];
        inside = inside && pos >= 0 && pos < g.in[d];
        in_padded = in_padded && pos >= -g.pad_begin[d] && pos < g.in[d] + g.pad_end[d];
        off = off * g.in[d] + pos;
      }
      padded += in_padded;
      if (inside) {
        const float v = load_f(xp[off]);
        if (kMax) {
          // NaN wins, like the CPU reference.
          if (!found || v > best || (v != v && best == best)) best = v;
          found = true;
        } else {
          acc += v;
          ++valid;
        }
      }
#pragma unroll
      for (int d = NSP - 1; d >= 0; --d) {
        if (++kidx[d] < g.k[d]) break;
        kidx[d] = 0;
      }
    }
    if (kMax) {
      y[idx] = store_f<T>(best);  // -FLT_MAX (the CPU's lowest()) when the window saw no input
    } else {
      const int64_t count = a.include_pad ? padded : valid;
      y[idx] = store_f<T>(count > 0 ? acc / static_cast<float>(count) : 0.f);
    }
  }
}

template <bool kMax, class T>
Status launch_direct(KernelContext& ctx, const DeviceTensor& X, DeviceTensor& Y, const ops::Window& w,
                     bool include_pad) {
  const size_t nsp = X.rank() - 2;
  PoolArgs a;
  a.total = Y.numel();
  a.include_pad = include_pad;
  for (size_t i = 0; i < nsp; ++i) {
    a.win.in[i] = X.dims[2 + i];
    a.win.out[i] = Y.dims[2 + i];
    a.win.k[i] = w.kernel[i];
    a.win.stride[i] = w.strides[i];
    a.win.dil[i] = w.dilations[i];
    a.win.pad_begin[i] = w.pad_begin[i];
    a.win.pad_end[i] = w.pad_end[i];
    a.win.in_size *= X.dims[2 + i];
    a.win.out_size *= Y.dims[2 + i];
    a.win.ksize *= w.kernel[i];
  }
  const T* x = X.ptr<T>();
  T* y = Y.ptr<T>();
  const unsigned grid = convpool::grid_for(a.total);
  cudaStream_t s = ctx.stream();
  switch (nsp) {
    case 1: pool_direct<1, kMax, T><<<grid, kThreads, 0, s>>>(x, y, a); break;
    case 2: pool_direct<2, kMax, T><<<grid, kThreads, 0, s>>>(x, y, a); break;
    case 3: pool_direct<3, kMax, T><<<grid, kThreads, 0, s>>>(x, y, a); break;
    case 4: pool_direct<4, kMax, T><<<grid, kThreads, 0, s>>>(x, y, a); break;
    case 5: pool_direct<5, kMax, T><<<grid, kThreads, 0, s>>>(x, y, a); break;
    case 6: pool_direct<6, kMax, T><<<grid, kThreads, 0, s>>>(x, y, a); break;
    default: return ctx.error("{} spatial dims are not supported on the GPU (at most {})", nsp, kMaxSpatial);
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

// cudnnPoolingForward when it computes exactly the reference's windows: true when it ran.
Result<bool> cudnn_pool(KernelContext& ctx, bool is_max, const DeviceTensor& X, DeviceTensor& Y,
                        const ops::Window& w, bool include_pad) {
  cudnnHandle_t h = ctx.res().cudnn;
  cudnnDataType_t t;
  const size_t nsp = X.rank() - 2;
  if (!h || nsp < 1 || nsp > 3 || !convpool::cudnn_dtype(X.dtype, &t)) return false;
  if (!convpool::fits_int(X.numel()) || !convpool::fits_int(Y.numel())) return false;
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t in = X.dims[2 + i], k = w.kernel[i], s = w.strides[i], p = w.pad_begin[i];
    if (w.dilations[i] != 1 || p != w.pad_end[i] || p >= k || !convpool::fits_int(k) || !convpool::fits_int(s))
      return false;
    if (in + 2 * p < k || (in + 2 * p - k) / s + 1 != Y.dims[2 + i]) return false;  // a ceil_mode window
  }
  std::vector<int> xd{static_cast<int>(X.dims[0]), static_cast<int>(X.dims[1])};
  std::vector<int> yd{static_cast<int>(Y.dims[0]), static_cast<int>(Y.dims[1])};
  std::vector<int> win, pad, stride;
  if (nsp == 1) {  // 1-D as 2-D with a unit height
    xd.push_back(1);
    yd.push_back(1);
    win.push_back(1);
    pad.push_back(0);
    stride.push_back(1);
  }
  for (size_t i = 0; i < nsp; ++i) {
    xd.push_back(static_cast<int>(X.dims[2 + i]));
    yd.push_back(static_cast<int>(Y.dims[2 + i]));
    win.push_back(static_cast<int>(w.kernel[i]));
    pad.push_back(static_cast<int>(w.pad_begin[i]));
    stride.push_back(static_cast<int>(w.strides[i]));
  }
  const cudnnPoolingMode_t mode = is_max        ? CUDNN_POOLING_MAX
                                  : include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                                : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
  convpool::PoolDesc pd;
  convpool::TensorDesc xdesc, ydesc;
  KILN_RETURN_IF_ERROR(pd.create());
  KILN_CUDNN_CHECK(cudnnSetPoolingNdDescriptor(pd.h, mode, CUDNN_PROPAGATE_NAN, static_cast<int>(win.size()),
                                               win.data(), pad.data(), stride.data()));
  KILN_RETURN_IF_ERROR(convpool::set_packed(xdesc, t, xd));
  KILN_RETURN_IF_ERROR(convpool::set_packed(ydesc, t, yd));
  std::vector<int> out(yd.size(), 0);
  if (cudnnGetPoolingNdForwardOutputDim(pd.h, xdesc.h, static_cast<int>(out.size()), out.data()) !=
          CUDNN_STATUS_SUCCESS ||
      out != yd)
    return false;
  const float alpha = 1.f, beta = 0.f;
  const cudnnStatus_t s = cudnnPoolingForward(h, pd.h, &alpha, xdesc.h, X.data, &beta, ydesc.h, Y.data);
  if (s == CUDNN_STATUS_NOT_SUPPORTED || s == CUDNN_STATUS_BAD_PARAM) return false;
  KILN_RETURN_IF_ERROR(cudnn_status(s, "cudnnPoolingForward", __FILE__, __LINE__));
  return true;
}

Status run_pool(KernelContext& ctx, bool is_max) {
  const DeviceTensor& X = ctx.input(0);
  DeviceTensor& Y = ctx.output(0);
  if (Y.numel() == 0) return Status();
  if (X.rank() < 3 || Y.rank() != X.rank())
    return ctx.error("pooling needs X and Y of one rank >= 3, got X {}, Y {}", dims_to_string(X.dims),
                     dims_to_string(Y.dims));
  const size_t nsp = X.rank() - 2;
  if (nsp > static_cast<size_t>(kMaxSpatial))
    return ctx.error("{} spatial dims are not supported on the GPU (at most {})", nsp, kMaxSpatial);
  KILN_ASSIGN_OR_RETURN(ops::Window w, ops::read_window(ctx.node(), nsp, {}));
  if (Y.dims[0] != X.dims[0] || Y.dims[1] != X.dims[1])
    return ctx.error("output {} does not match input {}", dims_to_string(Y.dims), dims_to_string(X.dims));
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t o = ops::window_output_size(w, i, X.dims[2 + i]);
    if (o != Y.dims[2 + i]) return ctx.error("output dim {} is {} but the window gives {}", 2 + i, Y.dims[2 + i], o);
  }
  const bool include_pad = !is_max && ctx.node().attr_int("count_include_pad", 0) != 0;
  KILN_ASSIGN_OR_RETURN(bool ran, cudnn_pool(ctx, is_max, X, Y, w, include_pad));
  if (ran) return Status();
  std::optional<Status> st = convpool::dispatch_float(X.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    return is_max ? launch_direct<true, T>(ctx, X, Y, w, include_pad)
                  : launch_direct<false, T>(ctx, X, Y, w, include_pad);
  });
  if (!st) return ctx.error("dtype {} is not supported", dtype_name(X.dtype));
  return *st;
}

Status run_max_pool(KernelContext& ctx) { return run_pool(ctx, true); }
Status run_average_pool(KernelContext& ctx) { return run_pool(ctx, false); }

bool supports_pool(const ir::Node& node, const std::vector<DType>& dts) {
  if (dts.empty() || !convpool::is_float_dtype(dts[0])) return false;
  // The Indices output of MaxPool is left to the CPU reference.
  if (node.outputs.size() > 1 && !node.outputs[1].empty()) return false;
  const size_t nsp = node.attr_ints("kernel_shape").size();
  return nsp >= 1 && nsp <= static_cast<size_t>(kMaxSpatial);
}

}  // namespace

void register_cuda_pool(KernelTable& t) {
  t.add({"MaxPool", run_max_pool, supports_pool});
  t.add({"AveragePool", run_average_pool, supports_pool});
}

}  // namespace kiln::cuda
