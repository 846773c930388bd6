#include "backends/device_probe.h"

#include <fmt/format.h>

namespace kiln {

#ifndef KILN_WITH_CUDA
GpuInfo probe_gpu() {
  GpuInfo info;
  info.error = "kiln was built without CUDA (-DKILN_WITH_CUDA=OFF)";
  return info;
}
#endif

bool cuda_backend_available() { return false; }

std::string cuda_unavailable_reason() {
  GpuInfo g = probe_gpu();
  if (g.count == 0) return "no usable GPU (" + g.error + ")";
  return fmt::format("GPU '{}' (sm_{}{}) found, but this kiln build has no CUDA backend yet", g.name, g.sm_major,
                     g.sm_minor);
}

}  // namespace kiln
