// FusedConv's own kernels (fused_conv.cu): the in-place epilogue (bias + Z + activation after a bare cuDNN
// convolution) and the direct convolution for what cuDNN cannot take, with the Geometry both describe.
// Included by fused_conv.cu only (its anonymous namespace).
#pragma once
#include "backends/cuda/kernels/conv_activation.cuh"
#include "backends/cuda/kernels/conv_pool_common.cuh"
#include "ops/fused_conv.h"

namespace kiln::cuda {

namespace {

using convpool::kMaxSpatial;
using convpool::kThreads;
using convpool::load_f;
using convpool::store_f;
using ops::ConvActivation;
using ops::ConvLayout;

// ---- device code -----------------------------------------------------------------------------------------

using convpool::activate;

// y = act(y + b[ch] + z), in place; ch = (idx / inner) % m (inner: spatial size for NCHW, 1 for NHWC).
template <class T>
__global__ void epilogue(T* __restrict__ y, const T* __restrict__ b, const T* __restrict__ z, int64_t total,
                         int64_t m, int64_t inner, int act, float lo, float hi) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = load_f(y[idx]);
    if (b) v += load_f(b[(idx / inner) % m]);
    if (z) v += load_f(z[idx]);
    y[idx] = store_f<T>(activate(v, act, lo, hi));
  }
}

// Direct convolution in either layout: element strides per role (n, channel, flat spatial / kernel tap).
struct DirectArgs {
  convpool::WindowArgs win;
  int64_t total = 0, m = 0, cg = 0, mg = 0;
  int64_t xs_n = 0, xs_c = 0, xs_s = 0;  // X: batch, channel, flat spatial position
  int64_t ws_m = 0, ws_c = 0, ws_k = 0;  // W: output channel, input channel (within group), flat kernel tap
  int64_t ys_n = 0, ys_c = 0, ys_s = 0;  // Y and Z
  int act = 0;
  float lo = 0.f, hi = 0.f;  // kClip's bounds
};

template <int NSP, class T>
__global__ void conv_direct(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                            const T* __restrict__ z, T* __restrict__ y, DirectArgs a) {
  const convpool::WindowArgs& g = a.win;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < a.total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // idx enumerates (n, m, out...) channels-first; the layout only changes the addresses.
    int64_t rem = idx, o_flat = 0, mul = 1;
    int64_t start[NSP];
#pragma unroll
    for (int d = NSP - 1; d >= 0; --d) {
      const int64_t o = rem % g.out[d];
      rem /= g.out[d];
      o_flat += o * mul;
      mul *= g.out[d];
      start[d] = o * g.stride[d] - g.pad_begin[d];
    }
    const int64_t m = rem % a.m, n = rem / a.m;
    const int64_t grp = m / a.mg;
    const T* xg = x + n * a.xs_n + grp * a.cg * a.xs_c;
    const T* wm = w + m * a.ws_m;
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
        const T* xp = xg + off * a.xs_s;
        const T* wp = wm + kf * a.ws_k;
        for (int64_t c = 0; c < a.cg; ++c) acc = fmaf(load_f(xp[c * a.xs_c]), load_f(wp[c * a.ws_c]), acc);
      }
#pragma unroll
      for (int d = NSP - 1; d >= 0; --d) {
        if (++kidx[d] < g.k[d]) break;
        kidx[d] = 0;
      }
    }
    const int64_t yi = n * a.ys_n + m * a.ys_c + o_flat * a.ys_s;
    if (b) acc += load_f(b[m]);
    if (z) acc += load_f(z[yi]);
    y[yi] = store_f<T>(activate(acc, a.act, a.lo, a.hi));
  }
}

// ---- geometry --------------------------------------------------------------------------------------------

struct Geometry {
  int64_t n = 0, c = 0, m = 0, group = 1;
  std::vector<int64_t> in, out, k, stride, dil, pad_begin, pad_end;  // spatial
  ConvLayout layout = ConvLayout::kNCHW;
  ConvActivation act = ConvActivation::kNone;
  float clip_lo = 0.f, clip_hi = 0.f;  // act == kClip
  size_t nsp() const { return in.size(); }
  bool nhwc() const { return layout == ConvLayout::kNHWC; }
  int64_t in_size() const { return num_elements(in); }
  int64_t out_size() const { return num_elements(out); }
  int64_t k_size() const { return num_elements(k); }
};

template <class T>
Status launch_epilogue(KernelContext& ctx, const Geometry& g, T* y, const T* b, const T* z, int64_t total) {
  if (!b && !z && g.act == ConvActivation::kNone) return Status();
  const int64_t inner = g.nhwc() ? 1 : g.out_size();
  epilogue<T><<<convpool::grid_for(total), kThreads, 0, ctx.stream()>>>(y, b, z, total, g.m, inner,
                                                                        static_cast<int>(g.act), g.clip_lo,
                                                                        g.clip_hi);
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

template <class T>
Status launch_direct(KernelContext& ctx, const Geometry& g, const T* x, const T* w, const T* b, const T* z,
                     T* y, int64_t total) {
  DirectArgs a;
  a.total = total;
  a.m = g.m;
  a.cg = g.c / g.group;
  a.mg = g.m / g.group;
  a.act = static_cast<int>(g.act);
  a.lo = g.clip_lo;
  a.hi = g.clip_hi;
  const size_t nsp = g.nsp();
  for (size_t i = 0; i < nsp; ++i) {
    a.win.in[i] = g.in[i];
    a.win.out[i] = g.out[i];
    a.win.k[i] = g.k[i];
    a.win.stride[i] = g.stride[i];
    a.win.dil[i] = g.dil[i];
    a.win.pad_begin[i] = g.pad_begin[i];
    a.win.pad_end[i] = g.pad_end[i];
  }
  a.win.in_size = g.in_size();
  a.win.out_size = g.out_size();
  a.win.ksize = g.k_size();
  if (g.nhwc()) {  // X [N, in..., C], W [M, k..., C/g], Y [N, out..., M]
    a.xs_n = g.in_size() * g.c, a.xs_c = 1, a.xs_s = g.c;
    a.ws_m = g.k_size() * a.cg, a.ws_c = 1, a.ws_k = a.cg;
    a.ys_n = g.out_size() * g.m, a.ys_c = 1, a.ys_s = g.m;
  } else {  // X [N, C, in...], W [M, C/g, k...], Y [N, M, out...]
    a.xs_n = g.c * g.in_size(), a.xs_c = g.in_size(), a.xs_s = 1;
    a.ws_m = a.cg * g.k_size(), a.ws_c = g.k_size(), a.ws_k = 1;
    a.ys_n = g.m * g.out_size(), a.ys_c = g.out_size(), a.ys_s = 1;
  }
  const unsigned grid = convpool::grid_for(total);
  cudaStream_t s = ctx.stream();
  switch (nsp) {
    case 1:
      conv_direct<1, T><<<grid, kThreads, 0, s>>>(x, w, b, z, y, a);
      break;
    case 2:
      conv_direct<2, T><<<grid, kThreads, 0, s>>>(x, w, b, z, y, a);
      break;
    case 3:
      conv_direct<3, T><<<grid, kThreads, 0, s>>>(x, w, b, z, y, a);
      break;
    case 4:
      conv_direct<4, T><<<grid, kThreads, 0, s>>>(x, w, b, z, y, a);
      break;
    case 5:
      conv_direct<5, T><<<grid, kThreads, 0, s>>>(x, w, b, z, y, a);
      break;
    case 6:
      conv_direct<6, T><<<grid, kThreads, 0, s>>>(x, w, b, z, y, a);
      break;
    default:
      return ctx.error("{} spatial dims are not supported on the GPU (at most {})", nsp, kMaxSpatial);
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

}  // namespace

}  // namespace kiln::cuda
