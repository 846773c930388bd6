// Depthwise convolution, channels-last (depthwise_conv.h). A block owns CB consecutive channels of a strip of
// output columns in one output row; each thread a vector of VEC channels (one 16-byte load in f16/bf16/f32
// when C allows) for kCols neighbouring output columns. The block's filters sit in shared memory, tap-major,
// so a thread reads its VEC weights of a tap as one contiguous run; neighbouring columns re-read the same input
// vectors, which L1 serves. Accumulation is f32, then bias, residual and activation, one store per vector.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <fmt/format.h>

#include <algorithm>
#include <climits>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernels/conv_activation.cuh"
#include "backends/cuda/kernels/conv_pool_common.cuh"
#include "backends/cuda/kernels/depthwise_conv.h"

namespace kiln::cuda {

namespace {

using convpool::load_f;
using convpool::store_f;

constexpr int kCols = 4;         // output columns per thread
constexpr int kBlockThreads = 128;

template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

struct Args {
  int c, in_h, in_w, out_h, out_w, k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, act;
  int cb;  // channels per block (blockDim.x * VEC)
  float lo, hi;  // kClip's bounds
};

template <class T, int VEC>
__global__ void depthwise_nhwc(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                               const T* z, T* y, Args a) {
  extern __shared__ float w_s[];  // [taps][cb]
  const int taps = a.k_h * a.k_w;
  const int c_block = blockIdx.z * a.cb;
  const int threads = blockDim.x * blockDim.y;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  for (int i = tid; i < taps * a.cb; i += threads) {
    const int cl = i / taps, tap = i % taps, ch = c_block + cl;
    w_s[tap * a.cb + cl] = ch < a.c ? load_f(w[static_cast<int64_t>(ch) * taps + tap]) : 0.f;
  }
  __syncthreads();

  const int cl = threadIdx.x * VEC;
  const int ch = c_block + cl;
  const int row = blockIdx.x;  // n * out_h + oh
  const int oh = row % a.out_h;
  const int64_t n = row / a.out_h;
  const int ow0 = (blockIdx.y * blockDim.y + threadIdx.y) * kCols;
  if (ch >= a.c || ow0 >= a.out_w) return;

  float acc[kCols][VEC];
#pragma unroll
  for (int t = 0; t < kCols; ++t)
#pragma unroll
    for (int v = 0; v < VEC; ++v) acc[t][v] = 0.f;

  const T* xn = x + n * a.in_h * a.in_w * static_cast<int64_t>(a.c) + ch;
  for (int i = 0; i < a.k_h; ++i) {
    const int ih = oh * a.stride_h - a.pad_h + i * a.dil_h;
    if (ih < 0 || ih >= a.in_h) continue;
    const T* xrow = xn + static_cast<int64_t>(ih) * a.in_w * a.c;
    for (int j = 0; j < a.k_w; ++j) {
      const float* wt = w_s + (i * a.k_w + j) * a.cb + cl;
      float wv[VEC];
#pragma unroll
      for (int v = 0; v < VEC; ++v) wv[v] = wt[v];
#pragma unroll
      for (int t = 0; t < kCols; ++t) {
        const int iw = (ow0 + t) * a.stride_w - a.pad_w + j * a.dil_w;
        if (ow0 + t >= a.out_w || iw < 0 || iw >= a.in_w) continue;
        const Pack<T, VEC> xv = *reinterpret_cast<const Pack<T, VEC>*>(xrow + static_cast<int64_t>(iw) * a.c);
#pragma unroll
        for (int v = 0; v < VEC; ++v) acc[t][v] = fmaf(load_f(xv.v[v]), wv[v], acc[t][v]);
      }
    }
  }

  float bv[VEC];
#pragma unroll
  for (int v = 0; v < VEC; ++v) bv[v] = b ? load_f(b[ch + v]) : 0.f;
  const int64_t yrow = (static_cast<int64_t>(row) * a.out_w) * a.c + ch;
#pragma unroll
  for (int t = 0; t < kCols; ++t) {
    if (ow0 + t >= a.out_w) break;
    const int64_t at = yrow + static_cast<int64_t>(ow0 + t) * a.c;
    Pack<T, VEC> out;
    Pack<T, VEC> zv{};
    if (z) zv = *reinterpret_cast<const Pack<T, VEC>*>(z + at);
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      float r = acc[t][v] + bv[v];
      if (z) r += load_f(zv.v[v]);
      out.v[v] = store_f<T>(convpool::activate(r, a.act, a.lo, a.hi));
    }
    *reinterpret_cast<Pack<T, VEC>*>(y + at) = out;
  }
}

bool aligned(const void* p, size_t bytes) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <class T, int VEC>
Status launch(cudaStream_t stream, const DepthwiseConvShape& s, const T* x, const T* w, const T* b, const T* z,
              T* y) {
  // Few channels: fewer threads across channels and more across columns, so no lane sits idle.
  const int64_t vectors = (s.c + VEC - 1) / VEC;
  int tx = 1;
  while (tx < vectors && tx < 32 / VEC * 2) tx *= 2;
  const int ty = kBlockThreads / tx;
  Args a{static_cast<int>(s.c),      static_cast<int>(s.in_h),     static_cast<int>(s.in_w),
         static_cast<int>(s.out_h),  static_cast<int>(s.out_w),    static_cast<int>(s.k_h),
         static_cast<int>(s.k_w),    static_cast<int>(s.stride_h), static_cast<int>(s.stride_w),
         static_cast<int>(s.dil_h),  static_cast<int>(s.dil_w),    static_cast<int>(s.pad_h),
         static_cast<int>(s.pad_w),  s.act,                        tx * VEC,
         s.clip_lo,                  s.clip_hi};
  const dim3 grid(static_cast<unsigned>(s.n * s.out_h),
                  static_cast<unsigned>((s.out_w + int64_t{ty} * kCols - 1) / (int64_t{ty} * kCols)),
                  static_cast<unsigned>((s.c + a.cb - 1) / a.cb));
  const size_t smem = static_cast<size_t>(s.k_h * s.k_w) * a.cb * sizeof(float);
  depthwise_nhwc<T, VEC><<<grid, dim3(tx, ty), smem, stream>>>(x, w, b, z, y, a);
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

template <class T>
Status launch_typed(cudaStream_t stream, const DepthwiseConvShape& s, const void* x, const void* w, const void* b,
                    const void* z, void* y) {
  constexpr int kVec = 16 / sizeof(T);
  const auto* xt = static_cast<const T*>(x);
  const auto* wt = static_cast<const T*>(w);
  const auto* bt = static_cast<const T*>(b);
  const auto* zt = static_cast<const T*>(z);
  auto* yt = static_cast<T*>(y);
  // 16-byte vectors need every channel row to start on a 16-byte boundary.
  if (s.c % kVec == 0 && aligned(x, 16) && aligned(y, 16) && aligned(z, 16))
    return launch<T, kVec>(stream, s, xt, wt, bt, zt, yt);
  if (s.c % 2 == 0 && aligned(x, 2 * sizeof(T)) && aligned(y, 2 * sizeof(T)) && aligned(z, 2 * sizeof(T)))
    return launch<T, 2>(stream, s, xt, wt, bt, zt, yt);
  return launch<T, 1>(stream, s, xt, wt, bt, zt, yt);
}

}  // namespace

bool depthwise_conv_can_implement(DType dt, const DepthwiseConvShape& s, std::string* why) {
  auto no = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  if (dt != DType::kF32 && dt != DType::kF16 && dt != DType::kBF16)
    return no(fmt::format("dtype {} (f32, f16 and bf16 only)", dtype_name(dt)));
  if (s.n <= 0 || s.c <= 0 || s.out_h <= 0 || s.out_w <= 0 || s.in_h <= 0 || s.in_w <= 0)
    return no("an empty tensor");
  if (s.k_h <= 0 || s.k_w <= 0 || s.k_h * s.k_w > kDepthwiseMaxTaps)
    return no(fmt::format("a {}x{} filter (at most {} taps)", s.k_h, s.k_w, kDepthwiseMaxTaps));
  if (s.stride_h <= 0 || s.stride_w <= 0 || s.dil_h <= 0 || s.dil_w <= 0 || s.pad_h < 0 || s.pad_w < 0)
    return no("a non-positive stride or dilation, or a negative pad");
  // Inner index math is 32-bit per row; rows and whole tensors are addressed in 64-bit.
  const int64_t limits[] = {s.c,     s.in_h * s.in_w, s.out_h * s.out_w, s.in_w * s.c, s.out_w * s.c,
                            s.n * s.out_h, s.stride_h * s.out_h + s.dil_h * s.k_h + s.pad_h,
                            s.stride_w * s.out_w + s.dil_w * s.k_w + s.pad_w};
  for (int64_t v : limits)
    if (v > INT_MAX / 2) return no(fmt::format("a dimension product of {} (32-bit row indexing)", v));
  if (s.c > int64_t{65535} * 8) return no(fmt::format("{} channels (grid limit)", s.c));
  return true;
}

Status launch_depthwise_conv(cudaStream_t stream, DType dt, const DepthwiseConvShape& s, const void* x,
                             const void* w, const void* b, const void* z, void* y) {
  std::string why;
  if (!depthwise_conv_can_implement(dt, s, &why))
    return Status(StatusCode::kInternal, "depthwise convolution launched for a shape it cannot take: " + why);
  switch (dt) {
    case DType::kF32:
      return launch_typed<float>(stream, s, x, w, b, z, y);
    case DType::kF16:
      return launch_typed<__half>(stream, s, x, w, b, z, y);
    default:
      return launch_typed<__nv_bfloat16>(stream, s, x, w, b, z, y);
  }
}

}  // namespace kiln::cuda
