// Shared by the Conv and pooling kernels: element load/store in f32, cuDNN dtype mapping, RAII cuDNN
// descriptors, launch sizing and the fixed-size window arguments of the direct (non-cuDNN) kernels.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel.h"

namespace kiln::cuda::convpool {

// Spatial dims the direct kernels handle (X of rank up to 8); cuDNN takes 1-D (as 2-D), 2-D and 3-D.
constexpr int kMaxSpatial = 6;
constexpr int kThreads = 256;

__device__ __forceinline__ float load_f(float v) { return v; }
__device__ __forceinline__ float load_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float load_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T>
__device__ __forceinline__ T store_f(float v);
template <>
__device__ __forceinline__ float store_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half store_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 store_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Returns fn(T{}) for the device element type T of a float dtype; nullopt for other dtypes.
template <class Fn>
std::optional<Status> dispatch_float(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::kF32: return fn(float{});
    case DType::kF16: return fn(__half{});
    case DType::kBF16: return fn(__nv_bfloat16{});
    default: return std::nullopt;
  }
}

inline bool is_float_dtype(DType dt) { return dt == DType::kF32 || dt == DType::kF16 || dt == DType::kBF16; }

inline bool cudnn_dtype(DType dt, cudnnDataType_t* out) {
  switch (dt) {
    case DType::kF32: *out = CUDNN_DATA_FLOAT; return true;
    case DType::kF16: *out = CUDNN_DATA_HALF; return true;
    case DType::kBF16: *out = CUDNN_DATA_BFLOAT16; return true;
    default: return false;
  }
}

// Grid of a grid-stride loop over `n` items.
inline unsigned grid_for(int64_t n) {
  const int64_t blocks = n / kThreads + (n % kThreads != 0);  // no n + kThreads - 1: it can wrap
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t{1} << 20)));
}

inline bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// One cuDNN descriptor, destroyed with its scope.
template <class H, cudnnStatus_t (*Create)(H*), cudnnStatus_t (*Destroy)(H)>
struct Desc {
  H h = nullptr;
  Desc() = default;
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  ~Desc() {
    if (h) Destroy(h);
  }
  Status create() { return cudnn_status(Create(&h), "cudnnCreate*Descriptor", __FILE__, __LINE__); }
};
using TensorDesc = Desc<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = Desc<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc =
    Desc<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;
using PoolDesc = Desc<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor, cudnnDestroyPoolingDescriptor>;

// A packed (NCHW / NCDHW) tensor descriptor.
inline Status set_packed(TensorDesc& d, cudnnDataType_t t, const std::vector<int>& dims) {
  std::vector<int> strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * dims[i + 1];
  KILN_RETURN_IF_ERROR(d.create());
  KILN_CUDNN_CHECK(cudnnSetTensorNdDescriptor(d.h, t, static_cast<int>(dims.size()), dims.data(), strides.data()));
  return Status();
}

// Window geometry of a direct kernel, by value in kernel parameters (unused trailing entries stay 0).
struct WindowArgs {
  int64_t in[kMaxSpatial] = {}, out[kMaxSpatial] = {}, k[kMaxSpatial] = {};
  int64_t stride[kMaxSpatial] = {}, dil[kMaxSpatial] = {}, pad_begin[kMaxSpatial] = {}, pad_end[kMaxSpatial] = {};
  int64_t in_size = 1, out_size = 1, ksize = 1;  // products over the spatial dims
};

}  // namespace kiln::cuda::convpool
