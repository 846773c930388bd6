// BatchNormalization (inference only: training_mode=1, or extra outputs before opset 14, fall back to the CPU),
// InstanceNormalization, GlobalAveragePool and GlobalMaxPool, all on NCHW-style [N, C, spatial...] of any
// spatial rank, f32/f16/bf16 with f32 arithmetic. Parameters may be any float dtype.
//  - BatchNormalization: elementwise over X viewed as [N, P, S] (P = C, or every activation with spatial=0
//    before opset 9), 16-byte packs when a pack never straddles two channels;
//  - InstanceNormalization: the row normalization of row_norm.cuh over [N*C, S], scale/B indexed by channel;
//  - Global pools: 4-16 lanes (short planes), a warp, or a block per [N*C] row; max propagates NaN, the mean of
//    nothing is NaN.
#include <algorithm>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/row_norm.cuh"

namespace kiln::cuda {

namespace {

using nrk::load_any;
using nrk::load_pack;
using nrk::store_pack;

bool all_floats(const std::vector<DType>& dts) {
  if (dts.empty() || !nrk::is_cuda_float(dts[0])) return false;
  for (size_t i = 1; i < dts.size(); ++i)
    if (dts[i] != DType::kUndefined && !nrk::is_cuda_float(dts[i])) return false;
  return true;
}

// ---- BatchNormalization ---------------------------------------------------------------------------------------
struct BnArgs {
  const void* scale = nullptr;
  const void* bias = nullptr;
  const void* mean = nullptr;
  const void* var = nullptr;
  int scale_code = 0, bias_code = 0, mean_code = 0, var_code = 0;
  float eps = 1e-5f;
  int64_t p = 1, s = 1;  // parameter slots, positions per slot
};

// P elements per access; when P > 1, s % P == 0 so a pack lies within one slot.
template <class T, int P>
__global__ void __launch_bounds__(256) bn_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t npacks,
                                                 BnArgs a) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t pk = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; pk < npacks; pk += stride) {
    const int64_t c = (pk * P / a.s) % a.p;
    const float mean = load_any(a.mean, a.mean_code, c);
    const float inv = 1.f / sqrtf(load_any(a.var, a.var_code, c) + a.eps);
    const float sc = load_any(a.scale, a.scale_code, c);
    const float b = load_any(a.bias, a.bias_code, c);
    float t[P];
    load_pack<T, P>(x, pk, t);
#pragma unroll
    for (int j = 0; j < P; ++j) t[j] = (t[j] - mean) * inv * sc + b;
    store_pack<T, P>(y, pk, t);
  }
}

bool supports_bn(const ir::Node& node, const std::vector<DType>& dts) {
  if (!all_floats(dts)) return false;
  bool extra_outputs = false;
  for (size_t i = 1; i < node.outputs.size(); ++i) extra_outputs |= !node.outputs[i].empty();
  if (extra_outputs) return false;  // training (running statistics): CPU reference
  if (node.attr_int("training_mode", 0) != 0) return false;
  return true;
}

Status run_bn(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  if (x.rank() < 2) return ctx.error("needs X of rank >= 2");
  for (size_t i = 1; i < 5; ++i)
    if (!ctx.has_input(i)) return ctx.error("needs input {}", i);
  const bool per_act = ctx.opset() < 9 && ctx.node().attr_int("spatial", 1) == 0;
  BnArgs a;
  const int64_t n = x.dims[0];
  a.p = per_act ? num_elements(std::vector<int64_t>(x.dims.begin() + 1, x.dims.end())) : x.dims[1];
  if (x.numel() == 0 || n * a.p == 0) return Status();
  a.s = x.numel() / (n * a.p);
  a.eps = ctx.node().attr_float("epsilon", 1e-5f);
  const DeviceTensor* params[4] = {&ctx.input(1), &ctx.input(2), &ctx.input(3), &ctx.input(4)};
  for (const DeviceTensor* t : params)
    if (t->numel() < a.p) return ctx.error("a parameter has {} elements, expected {}", t->numel(), a.p);
  a.scale = params[0]->data;
  a.bias = params[1]->data;
  a.mean = params[2]->data;
  a.var = params[3]->data;
  a.scale_code = nrk::fcode(params[0]->dtype);
  a.bias_code = nrk::fcode(params[1]->dtype);
  a.mean_code = nrk::fcode(params[2]->dtype);
  a.var_code = nrk::fcode(params[3]->dtype);
  cudaStream_t st = ctx.stream();
  const int64_t numel = x.numel();
  const bool ok = nrk::dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int P = 16 / sizeof(T);
    const T* px = x.ptr<const T>();
    T* py = y.ptr<T>();
    if (a.s % P == 0 && nrk::aligned16(px) && nrk::aligned16(py))
      bn_kernel<T, P><<<nrk::grid_for(numel / P, 256), 256, 0, st>>>(px, py, numel / P, a);
    else
      bn_kernel<T, 1><<<nrk::grid_for(numel, 256), 256, 0, st>>>(px, py, numel, a);
  });
  if (!ok) return ctx.error("dtype {} is not supported", dtype_name(x.dtype));
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

// ---- InstanceNormalization ----------------------------------------------------------------------------------
Status run_instance_norm(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  if (x.rank() < 2) return ctx.error("needs an input of rank >= 2");
  if (!ctx.has_input(1) || !ctx.has_input(2)) return ctx.error("needs scale and B");
  const int64_t n = x.dims[0], c = x.dims[1];
  if (x.numel() == 0 || n * c == 0) return Status();
  const DeviceTensor& scale = ctx.input(1);
  const DeviceTensor& bias = ctx.input(2);
  if (scale.numel() < c || bias.numel() < c)
    return ctx.error("scale/B have {}/{} elements, expected {}", scale.numel(), bias.numel(), c);
  nrk::NormArgs a;
  a.rows = n * c;
  a.d = x.numel() / a.rows;
  a.eps = ctx.node().attr_float("epsilon", 1e-5f);
  a.scale = scale.data;
  a.scale_code = nrk::fcode(scale.dtype);
  a.bias = bias.data;
  a.bias_code = nrk::fcode(bias.dtype);
  a.smap.mode = nrk::ParamMap::kPerRow;
  a.smap.channels = c;
  a.bmap = a.smap;
  const bool ok = nrk::dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    nrk::launch_norm<T>(x.ptr<const T>(), y.ptr<T>(), a, ctx.stream());
  });
  if (!ok) return ctx.error("dtype {} is not supported", dtype_name(x.dtype));
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

// ---- GlobalAveragePool / GlobalMaxPool ----------------------------------------------------------------------------
// As the reference: NaN wins and stays.
__device__ __forceinline__ float gp_max(float acc, float v) {
  return isnan(acc) ? acc : ((v > acc || isnan(v)) ? v : acc);
}

template <bool MAX>
__device__ __forceinline__ float gp_fold(float acc, float v) {
  return MAX ? gp_max(acc, v) : acc + v;
}

template <bool MAX, int LANES>
__device__ __forceinline__ float gp_group(float v) {
#pragma unroll
  for (int o = LANES / 2; o > 0; o >>= 1) v = gp_fold<MAX>(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <bool MAX>
__device__ __forceinline__ float gp_finish(float acc, int64_t s) {
  return MAX ? acc : acc / static_cast<float>(s);
}

// Rows [rows, S] with LANES lanes a row (4/8/16: several short rows a warp; 32: a warp; 0: the whole 256-thread
// block). P elements per access (S % P == 0 when P > 1). The row loop is uniform across each warp.
template <class T, int P, bool MAX, int LANES>
__global__ void __launch_bounds__(256) global_pool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                                          int64_t s) {
  constexpr bool kBlock = LANES == 0;
  constexpr int kGroups = kBlock ? 1 : 32 / LANES;
  __shared__ float sh[32];
  const int lane = threadIdx.x & 31;
  const int64_t group = kBlock ? blockDim.x : LANES;
  const int64_t tid = kBlock ? threadIdx.x : (threadIdx.x & (LANES - 1));
  const int64_t sub = kBlock ? 0 : (threadIdx.x & 31) / LANES;
  const int64_t units_per_block = kBlock ? 1 : (blockDim.x >> 5);
  const int64_t unit = blockIdx.x * units_per_block + (kBlock ? 0 : (threadIdx.x >> 5));
  const int64_t stride = static_cast<int64_t>(gridDim.x) * units_per_block * kGroups;
  const int64_t np = s / P;
  const float init = MAX ? -INFINITY : 0.f;
  for (int64_t row0 = unit * kGroups; row0 < rows; row0 += stride) {
    const int64_t row = row0 + sub;
    const bool live = row < rows;
    const T* xr = x + (live ? row : 0) * s;
    float acc = init;
    if (live) {
      for (int64_t p = tid; p < np; p += group) {
        float t[P];
        load_pack<T, P>(xr, p, t);
#pragma unroll
        for (int j = 0; j < P; ++j) acc = gp_fold<MAX>(acc, t[j]);
      }
    }
    if constexpr (kBlock) {
      acc = gp_group<MAX, 32>(acc);
      const int warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
      __syncthreads();
      if (lane == 0) sh[warp] = acc;
      __syncthreads();
      acc = lane < nwarps ? sh[lane] : init;
      acc = gp_group<MAX, 32>(acc);
    } else {
      acc = gp_group<MAX, LANES>(acc);
    }
    if (live && tid == 0) y[row] = nrk::from_f<T>(gp_finish<MAX>(acc, s));
  }
}

template <class T, int P, bool MAX>
void launch_global_pool_p(const T* x, T* y, int64_t rows, int64_t s, cudaStream_t st) {
  const int64_t np = s / P;
  if (np <= 4)
    global_pool_kernel<T, P, MAX, 4><<<nrk::grid_for(rows, 32), 128, 0, st>>>(x, y, rows, s);
  else if (np <= 8)
    global_pool_kernel<T, P, MAX, 8><<<nrk::grid_for(rows, 16), 128, 0, st>>>(x, y, rows, s);
  else if (np <= 16)
    global_pool_kernel<T, P, MAX, 16><<<nrk::grid_for(rows, 8), 128, 0, st>>>(x, y, rows, s);
  else if (s <= 1024)
    global_pool_kernel<T, P, MAX, 32><<<nrk::grid_for(rows, 4), 128, 0, st>>>(x, y, rows, s);
  else
    global_pool_kernel<T, P, MAX, 0><<<nrk::grid_for(rows, 1), 256, 0, st>>>(x, y, rows, s);
}

template <class T, bool MAX>
void launch_global_pool(const T* x, T* y, int64_t rows, int64_t s, cudaStream_t st) {
  constexpr int P = 16 / sizeof(T);
  if (s % P == 0 && nrk::aligned16(x))
    launch_global_pool_p<T, P, MAX>(x, y, rows, s, st);
  else
    launch_global_pool_p<T, 1, MAX>(x, y, rows, s, st);
}

Status run_global_pool(KernelContext& ctx) {
  const bool is_max = ctx.node().op_type == "GlobalMaxPool";
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  if (x.rank() < 2) return ctx.error("needs an input of rank >= 2");
  const int64_t rows = x.dims[0] * x.dims[1];
  if (rows == 0) return Status();
  const int64_t s = x.numel() / rows;
  if (y.numel() != rows) return ctx.error("output has {} elements, expected {}", y.numel(), rows);
  const bool ok = nrk::dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (is_max)
      launch_global_pool<T, true>(x.ptr<const T>(), y.ptr<T>(), rows, s, ctx.stream());
    else
      launch_global_pool<T, false>(x.ptr<const T>(), y.ptr<T>(), rows, s, ctx.stream());
  });
  if (!ok) return ctx.error("dtype {} is not supported", dtype_name(x.dtype));
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

bool supports_floats(const ir::Node&, const std::vector<DType>& dts) { return all_floats(dts); }

}  // namespace

void register_cuda_batch_norm(KernelTable& t) {
  t.add({"BatchNormalization", run_bn, supports_bn});
  t.add({"InstanceNormalization", run_instance_norm, supports_floats});
  t.add({"GlobalAveragePool", run_global_pool, supports_floats});
  t.add({"GlobalMaxPool", run_global_pool, supports_floats});
}

}  // namespace kiln::cuda
