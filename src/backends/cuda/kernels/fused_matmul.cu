// FusedMatMul on the GPU: one cuBLASLt call, Y = act(alpha·A·B + R + bias), with the bias (and ReLU or
// tanh-GELU) in the epilogue and the residual R as cuBLASLt's C matrix (beta = 1). cuBLASLt's GELU is the
// tanh form, so erf-GELU keeps the bias in the epilogue and runs one elementwise pass over the result. Batch
// dims of A fold into M: B is one shared 2-D weight.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/ew_common.cuh"
#include "backends/cuda/lt_matmul.h"
#include "ops/fused_matmul.h"

namespace kiln::cuda {

namespace {

using ops::MatMulActivation;

template <MatMulActivation kAct>
__device__ __forceinline__ float activate(float x) {
  if constexpr (kAct == MatMulActivation::kRelu) return x > 0.f ? x : 0.f;
  if constexpr (kAct == MatMulActivation::kGeluErf)
    return 0.5f * x * (1.f + erff(x * 0.70710678118654752440f));
  if constexpr (kAct == MatMulActivation::kGeluTanh)
    return 0.5f * x * (1.f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
  return x;
}

// y[i] = act((read_y ? y[i] : 0) + bias[i % n] + res[i]) over y[total]; bias and res may be null. After a
// GEMM it is the activation alone (read_y, no bias/res); for K = 0 it is the whole result.
template <class T, MatMulActivation kAct>
__global__ void epilogue_kernel(T* y, const T* bias, const T* res, int64_t total, int64_t n, bool read_y) {
  using N = ew::Num<T>;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = read_y ? static_cast<float>(N::load(y[i])) : 0.f;
    if (bias) v += static_cast<float>(N::load(bias[i % n]));
    if (res) v += static_cast<float>(N::load(res[i]));
    y[i] = N::store(activate<kAct>(v));
  }
}

// y = act(y) in place, 16 bytes a thread (the erf-GELU pass after a GEMM is bound by memory; element-wise
// 2-byte accesses ran it at about half the bandwidth). y must be 16-byte aligned; the last total % kVec
// elements go one per thread.
template <class T, MatMulActivation kAct>
__global__ void activate_in_place_kernel(T* __restrict__ y, int64_t total) {
  using N = ew::Num<T>;
  constexpr int kVec = 16 / sizeof(T);
  const int64_t vectors = total / kVec;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  uint4* y16 = reinterpret_cast<uint4*>(y);
  for (int64_t v = first; v < vectors; v += stride) {
    uint4 bits = y16[v];
    T e[kVec];
    memcpy(e, &bits, 16);
#pragma unroll
    for (int i = 0; i < kVec; ++i) e[i] = N::store(activate<kAct>(static_cast<float>(N::load(e[i]))));
    memcpy(&bits, e, 16);
    y16[v] = bits;
  }
  for (int64_t i = vectors * kVec + first; i < total; i += stride)
    y[i] = N::store(activate<kAct>(static_cast<float>(N::load(y[i]))));
}

template <class T, MatMulActivation kAct>
void launch_activate_in_place(cudaStream_t stream, T* y, int64_t total) {
  const int64_t vectors = total / (16 / static_cast<int64_t>(sizeof(T))) + 1;
  const int blocks =
      static_cast<int>(std::min<int64_t>((vectors + ew::kThreads - 1) / ew::kThreads, ew::kMaxBlocks));
  activate_in_place_kernel<T, kAct><<<blocks, ew::kThreads, 0, stream>>>(y, total);
}

template <class T>
Status launch_epilogue(KernelContext& ctx, MatMulActivation act, T* y, const T* bias, const T* res,
                       int64_t total, int64_t n, bool read_y) {
  if (total == 0) return Status();
  if (read_y && !bias && !res && reinterpret_cast<uintptr_t>(y) % 16 == 0 &&
      (act == MatMulActivation::kGeluErf || act == MatMulActivation::kGeluTanh)) {
    if (act == MatMulActivation::kGeluErf)
      launch_activate_in_place<T, MatMulActivation::kGeluErf>(ctx.stream(), y, total);
    else
      launch_activate_in_place<T, MatMulActivation::kGeluTanh>(ctx.stream(), y, total);
    KILN_CUDA_CHECK_LAUNCH();
    return Status();
  }
  const int blocks =
      static_cast<int>(std::min<int64_t>((total + ew::kThreads - 1) / ew::kThreads, ew::kMaxBlocks));
  switch (act) {
    case MatMulActivation::kRelu:
      epilogue_kernel<T, MatMulActivation::kRelu>
          <<<blocks, ew::kThreads, 0, ctx.stream()>>>(y, bias, res, total, n, read_y);
      break;
    case MatMulActivation::kGeluErf:
      epilogue_kernel<T, MatMulActivation::kGeluErf>
          <<<blocks, ew::kThreads, 0, ctx.stream()>>>(y, bias, res, total, n, read_y);
      break;
    case MatMulActivation::kGeluTanh:
      epilogue_kernel<T, MatMulActivation::kGeluTanh>
          <<<blocks, ew::kThreads, 0, ctx.stream()>>>(y, bias, res, total, n, read_y);
      break;
    default:
      epilogue_kernel<T, MatMulActivation::kNone>
          <<<blocks, ew::kThreads, 0, ctx.stream()>>>(y, bias, res, total, n, read_y);
      break;
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

Status run_fused_matmul(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  const DeviceTensor& A = ctx.input(0);
  const DeviceTensor& B = ctx.input(1);
  DeviceTensor& Y = ctx.output(0);
  MatMulActivation act;
  if (!ops::parse_matmul_activation(node.attr_string("activation", "none"), &act))
    return ctx.error("unknown activation '{}'", node.attr_string("activation", "none"));
  const bool trans_b = node.attr_int("trans_b", 0) != 0;
  const DeviceTensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const DeviceTensor* res = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (res && res->dims != Y.dims)
    return ctx.error("residual {} must have the output's shape {}", dims_to_string(res->dims),
                     dims_to_string(Y.dims));
  if (Y.numel() == 0) return Status();

  LtMatmul p;
  p.dtype = A.dtype;
  p.k = A.dims.back();
  p.n = trans_b ? B.dims[0] : B.dims[1];
  p.m = Y.numel() / p.n;  // every batch dim of A folds into M
  p.trans_b = trans_b;
  p.alpha = node.attr_float("alpha", 1.f);
  p.bias = bias ? bias->data : nullptr;
  p.beta = res ? 1.f : 0.f;
  // cuBLASLt applies ReLU and tanh-GELU itself; erf-GELU runs after it.
  if (act == MatMulActivation::kRelu) p.act = LtActivation::kRelu;
  if (act == MatMulActivation::kGeluTanh) p.act = LtActivation::kGeluTanh;

  auto status = ew::dispatch_float(A.dtype, [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    T* y = Y.ptr<T>();
    const T* pb = bias ? bias->ptr<T>() : nullptr;
    const T* pr = res ? res->ptr<T>() : nullptr;
    if (p.k == 0) return launch_epilogue<T>(ctx, act, y, pb, pr, Y.numel(), p.n, false);  // A·B is all zeros
    // applied speaks of p.act only: true for erf-GELU too (p.act is kNone there), which still needs its pass.
    bool applied = false;
    KILN_RETURN_IF_ERROR(lt_matmul(ctx, p, A.data, B.data, pr, Y.data, &applied));
    const bool epilogue_did_act = p.act != LtActivation::kNone && applied;
    if (act == MatMulActivation::kNone || epilogue_did_act) return Status();
    return launch_epilogue<T>(ctx, act, y, nullptr, nullptr, Y.numel(), p.n, true);
  });
  if (!status) return ctx.error("dtype {} is not supported (f32, f16, bf16)", dtype_name(A.dtype));
  return *status;
}

bool supports_fused_matmul(const ir::Node& n, const std::vector<DType>& dts) {
  if (!floats_only(n, dts) || dts.size() < 2) return false;
  for (DType d : dts)
    if (d != DType::kUndefined && d != dts[0]) return false;
  MatMulActivation act;
  return ops::parse_matmul_activation(n.attr_string("activation", "none"), &act);
}

}  // namespace

void register_cuda_fused_matmul(KernelTable& t) {
  t.add({"FusedMatMul", run_fused_matmul, supports_fused_matmul});
}

}  // namespace kiln::cuda
