// Device and library facts for `kiln doctor`, backend choice and engine compatibility manifests.
#include <cublasLt.h>
#include <cudnn.h>
#include <cuda_runtime.h>
#include <nvrtc.h>

#include "backends/device_probe.h"

namespace kiln {

GpuInfo probe_gpu() {
  GpuInfo info;
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;
  info.cublaslt_version = static_cast<int>(cublasLtGetVersion());
  nvrtcVersion(&info.nvrtc_major, &info.nvrtc_minor);
  info.cudnn_version = static_cast<int>(cudnnGetVersion());
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.error = no_gpu_message(cudaGetErrorString(err),
                                err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice, nvidia_driver_present());
    cudaGetLastError();  // clear the error so later calls start clean
    return info;
  }
  info.count = count;
  if (count == 0) {
    info.error = "no CUDA device is visible";
    return info;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    info.name = prop.name;
    info.sm_major = prop.major;
    info.sm_minor = prop.minor;
  }
  return info;
}

}  // namespace kiln
