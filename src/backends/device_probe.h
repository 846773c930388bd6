// What accelerators and GPU libraries this process can use; the only CUDA facts the CPU-side code needs.
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

// Whether the machine has an NVIDIA driver at all: a /dev/nvidia* node, or libcuda in a system library dir.
bool nvidia_driver_present();
// What probe_gpu reports when CUDA finds no device. On a machine with no GPU and no driver, CUDA's own words
// ("CUDA driver version is insufficient for CUDA runtime version") send people hunting for driver updates, so
// when the error is one of "no device"/"insufficient driver" and no driver is present, it says so plainly.
std::string no_gpu_message(const std::string& cuda_error, bool no_device_or_driver_error, bool driver_present);

}  // namespace kiln
