#include "backends/cuda/device_alloc.h"

#include <fmt/format.h>

namespace kiln::cuda {

namespace {
double mib(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }
}  // namespace

std::string device_free_summary() {
  size_t free_b = 0, total_b = 0;
  const cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return fmt::format("free GPU memory unknown (cudaMemGetInfo: {})", cudaGetErrorString(e));
  }
  return fmt::format("{} bytes ({:.1f} MiB) of {:.1f} MiB free on the GPU", free_b, mib(free_b), mib(total_b));
}

Status out_of_device_memory(std::string_view what, size_t bytes, cudaError_t e) {
  cudaGetLastError();
  return Status(StatusCode::kOutOfMemory,
                fmt::format("out of GPU memory allocating {}: {} bytes ({:.1f} MiB) requested, {} ({}); free GPU "
                            "memory held by other contexts or processes, or use smaller shapes",
                            what, bytes, mib(bytes), device_free_summary(), cudaGetErrorString(e)));
}

Status device_alloc(void** p, size_t bytes, std::string_view what) {
  *p = nullptr;
  const cudaError_t e = cudaMalloc(p, bytes);
  if (e == cudaSuccess) return Status();
  *p = nullptr;
  if (e == cudaErrorMemoryAllocation) return out_of_device_memory(what, bytes, e);
  cudaGetLastError();
  return Status(StatusCode::kInternal, fmt::format("cudaMalloc of {} bytes for {} failed: {} ({})", bytes, what,
                                                   cudaGetErrorString(e), static_cast<int>(e)));
}

}  // namespace kiln::cuda
