// What accelerators and GPU libraries this process can use: the facts `kiln doctor` prints, and what decides
// where the auto backend runs.
#pragma once
#include <string>

namespace kiln {

struct GpuInfo {
  int count = 0;          // visible CUDA devices
  std::string name;       // device 0
  int sm_major = 0, sm_minor = 0;
  int driver_version = 0;   // CUDA driver API version, e.g. 13000
  int runtime_version = 0;  // cudart version kiln was linked with
  int cublaslt_version = 0; // e.g. 130100
  int nvrtc_major = 0, nvrtc_minor = 0;
  int cudnn_version = 0;    // 0 when kiln does not use cuDNN
  std::string error;        // why count is 0, when it is
};

// Probes device 0 (cheap); never throws or aborts on machines without a GPU.
GpuInfo probe_gpu();
// The SM architecture kiln's CUDA kernels were compiled for (e.g. 90), 0 without CUDA.
int compiled_sm();
// True when kiln was built with CUDA and a GPU of the compiled architecture is usable here.
bool cuda_backend_available();
// One sentence: why the CUDA backend cannot run here (empty when it can).
std::string cuda_unavailable_reason();

}  // namespace kiln
