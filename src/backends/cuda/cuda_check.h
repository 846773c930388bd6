// CUDA/cuBLAS error checks that turn failures into Status values naming the call and the error.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <fmt/format.h>

#include "backends/cuda/device_alloc.h"
#include "kiln/status.h"

namespace kiln::cuda {

inline Status cuda_status(cudaError_t e, const char* what, const char* file, int line) {
  if (e == cudaSuccess) return Status();
  cudaGetLastError();  // clear a non-sticky error so the context keeps working
  // An allocation inside a CUDA call (a graph instantiation, a handle) ran out: say how much was free.
  if (e == cudaErrorMemoryAllocation)
    return Status(StatusCode::kOutOfMemory, fmt::format("{} failed: out of GPU memory, {} ({}) at {}:{}", what,
                                                        device_free_summary(), static_cast<int>(e), file, line));
  return Status(StatusCode::kInternal, fmt::format("{} failed: {} ({}) at {}:{}", what, cudaGetErrorString(e), static_cast<int>(e), file, line));
}

inline Status cublas_status(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status();
  return Status(StatusCode::kInternal,
                fmt::format("{} failed: cuBLAS status {} at {}:{}", what, static_cast<int>(s), file, line));
}

inline Status cudnn_status(cudnnStatus_t s, const char* what, const char* file, int line) {
  if (s == CUDNN_STATUS_SUCCESS) return Status();
  if (s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    return Status(StatusCode::kOutOfMemory, fmt::format("{} failed: cuDNN ran out of GPU memory, {} at {}:{}", what,
                                                        device_free_summary(), file, line));
  return Status(StatusCode::kInternal, fmt::format("{} failed: cuDNN status {} ({}) at {}:{}", what,
                                                   cudnnGetErrorString(s), static_cast<int>(s), file, line));
}

}  // namespace kiln::cuda

#define KILN_CUDA_CHECK(expr) KILN_RETURN_IF_ERROR(::kiln::cuda::cuda_status((expr), #expr, __FILE__, __LINE__))
#define KILN_CUBLAS_CHECK(expr) KILN_RETURN_IF_ERROR(::kiln::cuda::cublas_status((expr), #expr, __FILE__, __LINE__))
#define KILN_CUDNN_CHECK(expr) KILN_RETURN_IF_ERROR(::kiln::cuda::cudnn_status((expr), #expr, __FILE__, __LINE__))
// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define KILN_CUDA_CHECK_LAUNCH() KILN_CUDA_CHECK(cudaGetLastError())
