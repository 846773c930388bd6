// What accelerators this process can use; the only CUDA facts the CPU-side code needs.
#pragma once
#include <string>

namespace kiln {

struct GpuInfo {
  int count = 0;          // visible CUDA devices
  std::string name;       // device 0
  int sm_major = 0, sm_minor = 0;
  int driver_version = 0;   // CUDA driver API version, e.g. 13000
  int runtime_version = 0;  // cudart version kiln was linked with
  std::string error;        // why count is 0, when it is
};

// Probes device 0 once per call (cheap); never throws or aborts on machines without a GPU.
GpuInfo probe_gpu();
// True when kiln was built with its CUDA backend and can run it here. (The CUDA backend is not built yet.)
bool cuda_backend_available();
// One sentence: why the CUDA backend cannot run here.
std::string cuda_unavailable_reason();

}  // namespace kiln
