#include "backends/device_probe.h"

#include <fmt/format.h>

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
  if (g.count == 0) return "no usable GPU (" + g.error + ")";
  const int sm = g.sm_major * 10 + g.sm_minor;
  if (sm != compiled_sm())
    return fmt::format("GPU '{}' is sm_{} but kiln's kernels were built for sm_{}; rebuild kiln with "
                       "-DCMAKE_CUDA_ARCHITECTURES={}",
                       g.name, sm, compiled_sm(), sm);
  return "";
#endif
}

bool cuda_backend_available() { return cuda_unavailable_reason().empty(); }

}  // namespace kiln
