// Device allocations that fail as values: every cudaMalloc in kiln goes through device_alloc, so running out
// of GPU memory during build, load or run is a kOutOfMemory Status that says what was being allocated, how
// much, and how much the GPU had free, never a crash or a bare "out of memory".
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "kiln/status.h"

namespace kiln::cuda {

// "X of Y MiB free on the GPU" from cudaMemGetInfo; says so when even that query fails.
std::string device_free_summary();

// The Status for a failed allocation of `bytes` for `what` (e.g. "the activation arena for shapes x:8x64").
// Clears the (non-sticky) error so the context keeps working.
Status out_of_device_memory(std::string_view what, size_t bytes, cudaError_t e);

// cudaMalloc(`bytes`) into *p; on failure *p is null and the Status is out_of_device_memory's.
Status device_alloc(void** p, size_t bytes, std::string_view what);

}  // namespace kiln::cuda
