#include "backends/device_probe.h"

#include <fmt/format.h>

#include <filesystem>
#include <system_error>

namespace kiln {

#ifndef KILN_WITH_CUDA
GpuInfo probe_gpu() {
  GpuInfo info;
  info.error = "kiln was built without CUDA (-DKILN_WITH_CUDA=OFF)";
  return info;
}
int compiled_sm() { return 0; }
#else
int compiled_sm() { return KILN_CUDA_SM; }
#endif

std::string cuda_unavailable_reason() {
#ifndef KILN_WITH_CUDA
  return "kiln was built without CUDA (-DKILN_WITH_CUDA=OFF)";
#else
  GpuInfo g = probe_gpu();
  if (g.count == 0) return g.error.rfind("no NVIDIA GPU", 0) == 0 ? g.error : "no usable GPU (" + g.error + ")";
  const int sm = g.sm_major * 10 + g.sm_minor;
  if (sm != compiled_sm())
    return fmt::format("GPU '{}' is sm_{} but kiln's kernels were built for sm_{}; rebuild kiln with "
                       "-DCMAKE_CUDA_ARCHITECTURES={}",
                       g.name, sm, compiled_sm(), sm);
  return "";
#endif
}

bool cuda_backend_available() { return cuda_unavailable_reason().empty(); }

bool nvidia_driver_present() {
  std::error_code ec;
  if (std::filesystem::exists("/dev/nvidiactl", ec) || std::filesystem::exists("/dev/nvidia0", ec)) return true;
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu",
                          "/usr/lib/wsl/lib"})
    if (std::filesystem::exists(std::filesystem::path(dir) / "libcuda.so.1", ec)) return true;
  return false;
}

std::string no_gpu_message(const std::string& cuda_error, bool no_device_or_driver_error, bool driver_present) {
  if (no_device_or_driver_error && !driver_present)
    return "no NVIDIA GPU or driver found on this machine (CUDA reported: " + cuda_error + ")";
  return cuda_error;
}

}  // namespace kiln
