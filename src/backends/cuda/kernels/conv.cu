// Conv: X [N, C, D...], W [M, C/group, k...], optional B [M] -> Y [N, M, out...], f32/f16/bf16 accumulating
// in f32. Pads (auto_pad included) are resolved by ops::read_window / window_output_size, the code inference
// and the CPU reference use, so the geometry is exactly theirs.
//  - 1-D (as 2-D with a unit height), 2-D and 3-D run through cuDNN's legacy API: the first algorithm of
//    cudnnGetConvolutionForwardAlgorithm_v7 whose workspace fits the context's scratch. f32 uses FMA math
//    (no TF32) unless the engine allows TF32; f16/bf16 use tensor-op math. cuDNN takes one pad per axis:
//    asymmetric pads are split into the symmetric part (cuDNN's) and the rest, which is written explicitly
//    into a padded copy of X in the scratch; the bias B is added by a small kernel afterwards.
//  - Anything cuDNN cannot take (more spatial dims, sizes past int32, a padded copy larger than the scratch,
//    no algorithm) runs on a direct kernel: one thread per output, f32 accumulation, bias fused.
// Descriptors are made per call; the algorithm choice is cached per exact shape and device.
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/shape_limits.h"
#include "backends/cuda/kernels/conv_pool_common.cuh"
#include "ops/conv_pool_attrs.h"

namespace kiln::cuda {

namespace {

using convpool::kMaxSpatial;
using convpool::kThreads;
using convpool::load_f;
using convpool::store_f;
using convpool::WindowArgs;

// ---- device kernels -------------------------------------------------------------------------------------

struct DirectArgs {
  WindowArgs win;
  int64_t total = 0;            // N * M * out_size
  int64_t c = 0, m = 0, cg = 0, mg = 0;  // input/output channels, per group
};

// One thread per output element; taps outside the input (padding) are skipped.
template <int NSP, class T>
__global__ void conv_direct(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                            T* __restrict__ y, DirectArgs a) {
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
    const int64_t m = rem % a.m, n = rem / a.m;
    const int64_t grp = m / a.mg;
    const T* xg = x + (n * a.c + grp * a.cg) * g.in_size;
    const T* wm = w + m * a.cg * g.ksize;
    int64_t kidx[NSP];
#pragma unroll
    for (int d = 0; d < NSP; ++d) kidx[d] = 0;
    float acc = 0.f;
    for (int64_t kf = 0; kf < g.ksize; ++kf) {
      int64_t off = 0;
      bool inside = true;
#pragma unroll
      for (int d = 0; d < NSP; ++d) {
        const int64_t pos = start[d] + kidx[d] * g.dil[d];
        inside = inside && pos >= 0 && pos < g.in[d];
        off = off * g.in[d] + pos;
      }
      if (inside) {
        for (int64_t c = 0; c < a.cg; ++c)
          acc = fmaf(load_f(xg[c * g.in_size + off]), load_f(wm[c * g.ksize + kf]), acc);
      }
#pragma unroll
      for (int d = NSP - 1; d >= 0; --d) {
        if (++kidx[d] < g.k[d]) break;
        kidx[d] = 0;
      }
    }
    if (b) acc += load_f(b[m]);
    y[idx] = store_f<T>(acc);
  }
}

// Copy of X with explicit zero padding: `in` -> `out` = in + begin + end per axis (3 axes; 1-D/2-D lead with 1s).
struct PadArgs {
  int64_t total = 0;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, begin[3] = {0, 0, 0};
};

template <class T>
__global__ void pad_input(const T* __restrict__ x, T* __restrict__ xp, PadArgs a) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < a.total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rem = idx;
    const int64_t ow = rem % a.out[2];
    rem /= a.out[2];
    const int64_t oh = rem % a.out[1];
    rem /= a.out[1];
    const int64_t od = rem % a.out[0];
    const int64_t plane = rem / a.out[0];
    const int64_t id = od - a.begin[0], ih = oh - a.begin[1], iw = ow - a.begin[2];
    const bool inside = id >= 0 && id < a.in[0] && ih >= 0 && ih < a.in[1] && iw >= 0 && iw < a.in[2];
    xp[idx] = inside ? x[((plane * a.in[0] + id) * a.in[1] + ih) * a.in[2] + iw] : store_f<T>(0.f);
  }
}

// y[n, m, ...] += b[m]
template <class T>
__global__ void add_bias(T* __restrict__ y, const T* __restrict__ b, int64_t total, int64_t m, int64_t spatial) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ch = (idx / spatial) % m;
    y[idx] = store_f<T>(load_f(y[idx]) + load_f(b[ch]));
  }
}

// ---- geometry --------------------------------------------------------------------------------------------

struct Geometry {
  int64_t n = 0, c = 0, m = 0, group = 1;
  std::vector<int64_t> in, out, k, stride, dil, pad_begin, pad_end;  // spatial
  size_t nsp() const { return in.size(); }
};

// ---- cuDNN -----------------------------------------------------------------------------------------------

// A cuDNN convolution: 4-D or 5-D tensors (int dims as cuDNN takes them), symmetric pads.
struct CudnnConv {
  std::vector<int> x, w, y;              // NC + spatial
  std::vector<int> pad, stride, dil;     // spatial
  int group = 1;
};

struct AlgoChoice {
  cudnnConvolutionFwdAlgo_t algo;
  cudnnMathType_t math;
};

std::mutex g_algo_mu;
std::map<std::vector<int64_t>, AlgoChoice>& algo_cache() {
  static std::map<std::vector<int64_t>, AlgoChoice> cache;
  return cache;
}

bool is_tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// Runs the convolution through cuDNN: true when it ran, false when cuDNN offers no algorithm that takes it
// (the caller falls back to the direct kernel).
Result<bool> cudnn_conv(KernelContext& ctx, DType dt, const CudnnConv& cv, const void* x, const void* w, void* y,
                        void* ws, size_t ws_bytes) {
  cudnnHandle_t h = ctx.res().cudnn;
  cudnnDataType_t t;
  if (!h || !convpool::cudnn_dtype(dt, &t)) return false;
  const int nd = static_cast<int>(cv.x.size());
  convpool::TensorDesc xd, yd;
  convpool::FilterDesc wd;
  convpool::ConvDesc cd;
  KILN_RETURN_IF_ERROR(convpool::set_packed(xd, t, cv.x));
  KILN_RETURN_IF_ERROR(convpool::set_packed(yd, t, cv.y));
  KILN_RETURN_IF_ERROR(wd.create());
  KILN_CUDNN_CHECK(cudnnSetFilterNdDescriptor(wd.h, t, CUDNN_TENSOR_NCHW, nd, cv.w.data()));
  KILN_RETURN_IF_ERROR(cd.create());
  KILN_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(cd.h, nd - 2, cv.pad.data(), cv.stride.data(), cv.dil.data(),
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(cd.h, cv.group));
  // FMA math keeps TF32 off for f32 (cuDNN's default math allows TF32 on Ampere and later).
  const bool fma_only = dt == DType::kF32 && !ctx.res().allow_tf32;
  const cudnnMathType_t math =
      fma_only ? CUDNN_FMA_MATH : (dt == DType::kF32 ? CUDNN_DEFAULT_MATH : CUDNN_TENSOR_OP_MATH);
  KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(cd.h, math));
  // cuDNN must agree on the output dims (it always should: same formula); otherwise leave it to the fallback.
  std::vector<int> out_dims(nd, 0);
  if (cudnnGetConvolutionNdForwardOutputDim(cd.h, xd.h, wd.h, nd, out_dims.data()) != CUDNN_STATUS_SUCCESS ||
      out_dims != cv.y)
    return false;

  int device = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&device));
  std::vector<int64_t> key{device, static_cast<int64_t>(dt), static_cast<int64_t>(math),
                           static_cast<int64_t>(ws_bytes), cv.group};
  for (const auto* v : {&cv.x, &cv.w, &cv.pad, &cv.stride, &cv.dil}) key.insert(key.end(), v->begin(), v->end());

  const float alpha = 1.f, beta = 0.f;
  // Runs one algorithm: true when it ran, false when cuDNN declines it (not supported / workspace too big).
  auto try_algo = [&](cudnnConvolutionFwdAlgo_t algo, cudnnMathType_t algo_math) -> Result<bool> {
    KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(cd.h, algo_math));
    size_t need = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(h, xd.h, wd.h, cd.h, yd.h, algo, &need) != CUDNN_STATUS_SUCCESS ||
        need > ws_bytes)
      return false;
    const cudnnStatus_t s =
        cudnnConvolutionForward(h, &alpha, xd.h, x, wd.h, w, cd.h, algo, need ? ws : nullptr, need, &beta, yd.h, y);
    if (s == CUDNN_STATUS_NOT_SUPPORTED || s == CUDNN_STATUS_BAD_PARAM) return false;
    KILN_RETURN_IF_ERROR(cudnn_status(s, "cudnnConvolutionForward", __FILE__, __LINE__));
    return true;
  };

  {
    std::optional<AlgoChoice> cached;
    {
      std::lock_guard<std::mutex> lock(g_algo_mu);
      auto it = algo_cache().find(key);
      if (it != algo_cache().end()) cached = it->second;
    }
    if (cached) {
      KILN_ASSIGN_OR_RETURN(bool ran, try_algo(cached->algo, cached->math));
      if (ran) return true;
    }
  }

  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int found = 0;
  KILN_CUDNN_CHECK(
      cudnnGetConvolutionForwardAlgorithm_v7(h, xd.h, wd.h, cd.h, yd.h, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf));
  for (int i = 0; i < found; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& p = perf[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > ws_bytes) continue;
    if (fma_only && is_tensor_op(p.mathType)) continue;
    const cudnnMathType_t algo_math = fma_only ? CUDNN_FMA_MATH : p.mathType;
    KILN_ASSIGN_OR_RETURN(bool ran, try_algo(p.algo, algo_math));
    if (!ran) continue;
    std::lock_guard<std::mutex> lock(g_algo_mu);
    if (algo_cache().size() > 4096) algo_cache().clear();
    algo_cache()[key] = {p.algo, algo_math};
    return true;
  }
  return false;
}

// ---- launchers -------------------------------------------------------------------------------------------

template <class T>
Status launch_bias(KernelContext& ctx, const DeviceTensor& B, DeviceTensor& Y, const Geometry& g) {
  const int64_t total = Y.numel();
  const int64_t spatial = total / (g.n * g.m);
  add_bias<T><<<convpool::grid_for(total), kThreads, 0, ctx.stream()>>>(Y.ptr<T>(), B.ptr<T>(), total, g.m, spatial);
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

template <class T>
Status launch_direct(KernelContext& ctx, const DeviceTensor& X, const DeviceTensor& W, const DeviceTensor* B,
                     DeviceTensor& Y, const Geometry& g) {
  DirectArgs a;
  a.total = Y.numel();
  a.c = g.c;
  a.m = g.m;
  a.cg = g.c / g.group;
  a.mg = g.m / g.group;
  const size_t nsp = g.nsp();
  for (size_t i = 0; i < nsp; ++i) {
    a.win.in[i] = g.in[i];
    a.win.out[i] = g.out[i];
    a.win.k[i] = g.k[i];
    a.win.stride[i] = g.stride[i];
    a.win.dil[i] = g.dil[i];
    a.win.pad_begin[i] = g.pad_begin[i];
    a.win.pad_end[i] = g.pad_end[i];
    a.win.in_size *= g.in[i];
    a.win.out_size *= g.out[i];
    a.win.ksize *= g.k[i];
  }
  const T* x = X.ptr<T>();
  const T* w = W.ptr<T>();
  const T* b = B ? B->ptr<T>() : nullptr;
  T* y = Y.ptr<T>();
  const unsigned grid = convpool::grid_for(a.total);
  cudaStream_t s = ctx.stream();
  switch (nsp) {
    case 1: conv_direct<1, T><<<grid, kThreads, 0, s>>>(x, w, b, y, a); break;
    case 2: conv_direct<2, T><<<grid, kThreads, 0, s>>>(x, w, b, y, a); break;
    case 3: conv_direct<3, T><<<grid, kThreads, 0, s>>>(x, w, b, y, a); break;
    case 4: conv_direct<4, T><<<grid, kThreads, 0, s>>>(x, w, b, y, a); break;
    case 5: conv_direct<5, T><<<grid, kThreads, 0, s>>>(x, w, b, y, a); break;
    case 6: conv_direct<6, T><<<grid, kThreads, 0, s>>>(x, w, b, y, a); break;
    default: return ctx.error("{} spatial dims are not supported on the GPU (at most {})", nsp, kMaxSpatial);
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

// cuDNN for 1-D/2-D/3-D when the sizes fit its int32 API: true when it ran.
template <class T>
Result<bool> conv_cudnn_path(KernelContext& ctx, const DeviceTensor& X, const DeviceTensor& W, DeviceTensor& Y,
                             const Geometry& g) {
  const size_t nsp = g.nsp();
  if (nsp < 1 || nsp > 3 || !ctx.res().cudnn) return false;
  // Symmetric part of the pads goes to cuDNN, the rest into an explicitly padded copy of X.
  std::vector<int64_t> sym(nsp), extra_begin(nsp), extra_end(nsp), padded(nsp);
  bool asymmetric = false;
  int64_t padded_numel = g.n * g.c;
  for (size_t i = 0; i < nsp; ++i) {
    sym[i] = std::min(g.pad_begin[i], g.pad_end[i]);
    extra_begin[i] = g.pad_begin[i] - sym[i];
    extra_end[i] = g.pad_end[i] - sym[i];
    asymmetric |= extra_begin[i] != 0 || extra_end[i] != 0;
    padded[i] = g.in[i] + extra_begin[i] + extra_end[i];
    padded_numel *= padded[i];
  }
  if (!convpool::fits_int(X.numel()) || !convpool::fits_int(W.numel()) || !convpool::fits_int(Y.numel()) ||
      !convpool::fits_int(padded_numel))
    return false;
  for (size_t i = 0; i < nsp; ++i)
    if (!convpool::fits_int(sym[i]) || !convpool::fits_int(g.stride[i]) || !convpool::fits_int(g.dil[i]))
      return false;

  const void* x = X.data;
  void* ws = ctx.res().workspace;
  size_t ws_bytes = ctx.res().workspace_bytes;
  std::vector<int64_t> x_spatial = g.in;
  if (asymmetric) {
    const size_t bytes = static_cast<size_t>(padded_numel) * sizeof(T);
    const size_t aligned = (bytes + 255) / 256 * 256;
    if (!ws || aligned > ws_bytes) return false;
    PadArgs pa;
    pa.total = padded_numel;
    for (size_t i = 0; i < nsp; ++i) {
      const size_t ax = 3 - nsp + i;
      pa.in[ax] = g.in[i];
      pa.out[ax] = padded[i];
      pa.begin[ax] = extra_begin[i];
    }
    pad_input<T><<<convpool::grid_for(pa.total), kThreads, 0, ctx.stream()>>>(X.ptr<T>(), static_cast<T*>(ws), pa);
    KILN_CUDA_CHECK_LAUNCH();
    x = ws;
    ws = static_cast<char*>(ws) + aligned;
    ws_bytes -= aligned;
    x_spatial = padded;
  }
  if (ws_bytes == 0) ws = nullptr;

  CudnnConv cv;
  cv.group = static_cast<int>(g.group);
  cv.x = {static_cast<int>(g.n), static_cast<int>(g.c)};
  cv.w = {static_cast<int>(g.m), static_cast<int>(g.c / g.group)};
  cv.y = {static_cast<int>(g.n), static_cast<int>(g.m)};
  if (nsp == 1) {  // 1-D as 2-D with a unit height
    cv.x.push_back(1);
    cv.w.push_back(1);
    cv.y.push_back(1);
    cv.pad.push_back(0);
    cv.stride.push_back(1);
    cv.dil.push_back(1);
  }
  for (size_t i = 0; i < nsp; ++i) {
    cv.x.push_back(static_cast<int>(x_spatial[i]));
    cv.w.push_back(static_cast<int>(g.k[i]));
    cv.y.push_back(static_cast<int>(g.out[i]));
    cv.pad.push_back(static_cast<int>(sym[i]));
    cv.stride.push_back(static_cast<int>(g.stride[i]));
    cv.dil.push_back(static_cast<int>(g.dil[i]));
  }
  return cudnn_conv(ctx, X.dtype, cv, x, W.data, Y.data, ws, ws_bytes);
}

template <class T>
Status conv_typed(KernelContext& ctx, const DeviceTensor& X, const DeviceTensor& W, const DeviceTensor* B,
                  DeviceTensor& Y, const Geometry& g) {
  if (X.numel() == 0 || W.numel() == 0) {  // no input channels: the output is the bias (or zeros)
    KILN_CUDA_CHECK(cudaMemsetAsync(Y.data, 0, Y.nbytes(), ctx.stream()));
    return B ? launch_bias<T>(ctx, *B, Y, g) : Status();
  }
  KILN_ASSIGN_OR_RETURN(bool ran, conv_cudnn_path<T>(ctx, X, W, Y, g));
  if (ran) return B ? launch_bias<T>(ctx, *B, Y, g) : Status();
  return launch_direct<T>(ctx, X, W, B, Y, g);
}

Status run_conv(KernelContext& ctx) {
  const DeviceTensor& X = ctx.input(0);
  const DeviceTensor& W = ctx.input(1);
  const DeviceTensor* B = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  DeviceTensor& Y = ctx.output(0);
  if (Y.numel() == 0) return Status();
  if (X.rank() < 3 || W.rank() != X.rank() || Y.rank() != X.rank())
    return ctx.error("Conv needs X, W and Y of one rank >= 3, got X {}, W {}, Y {}", dims_to_string(X.dims),
                     dims_to_string(W.dims), dims_to_string(Y.dims));
  const size_t nsp = X.rank() - 2;
  if (nsp > static_cast<size_t>(kMaxSpatial))
    return ctx.error("{} spatial dims are not supported on the GPU (at most {})", nsp, kMaxSpatial);
  Geometry g;
  KILN_ASSIGN_OR_RETURN(ops::Window win, ops::read_window(ctx.node(), nsp, {W.dims.begin() + 2, W.dims.end()}));
  g.n = X.dims[0];
  g.c = X.dims[1];
  g.m = W.dims[0];
  g.group = ctx.node().attr_int("group", 1);
  if (g.group <= 0 || g.c % g.group != 0 || g.m % g.group != 0 || W.dims[1] * g.group != g.c ||
      Y.dims[0] != g.n || Y.dims[1] != g.m || (B && (B->rank() != 1 || B->dims[0] != g.m)))
    return ctx.error("inconsistent Conv shapes: X {}, W {}, Y {}, group {}", dims_to_string(X.dims),
                     dims_to_string(W.dims), dims_to_string(Y.dims), g.group);
  g.in.assign(X.dims.begin() + 2, X.dims.end());
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t o = ops::window_output_size(win, i, g.in[i]);
    if (o != Y.dims[2 + i])
      return ctx.error("output dim {} is {} but the window gives {}", 2 + i, Y.dims[2 + i], o);
    g.out.push_back(o);
  }
  g.k = win.kernel;
  g.stride = win.strides;
  g.dil = win.dilations;
  g.pad_begin = win.pad_begin;
  g.pad_end = win.pad_end;
  std::optional<Status> st = convpool::dispatch_float(X.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    return conv_typed<T>(ctx, X, W, B, Y, g);
  });
  if (!st) return ctx.error("dtype {} is not supported", dtype_name(X.dtype));
  return *st;
}

bool supports_conv(const ir::Node& node, const std::vector<DType>& dts) {
  if (dts.size() < 2 || !convpool::is_float_dtype(dts[0]) || dts[1] != dts[0]) return false;
  if (dts.size() > 2 && dts[2] != DType::kUndefined && dts[2] != dts[0]) return false;
  if (node.attr_ints("kernel_shape").size() > static_cast<size_t>(kMaxSpatial)) return false;
  return true;
}

}  // namespace

std::string conv_spatial_limit(const ir::Node&, const std::vector<InputFact>& in) {
  if (in.empty() || !in[0].present || in[0].dims.size() < 3) return "";
  const size_t nsp = in[0].dims.size() - 2;
  if (nsp <= static_cast<size_t>(kMaxSpatial)) return "";
  return fmt::format("{} spatial dims (the GPU kernels take at most {})", nsp, kMaxSpatial);
}

void register_cuda_conv(KernelTable& t) { t.add({"Conv", run_conv, supports_conv}); }

}  // namespace kiln::cuda
