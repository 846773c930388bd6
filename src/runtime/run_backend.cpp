#include "runtime/run_backend.h"

#include "engine/engine_state.h"
#include "util/error.h"

namespace kiln {

Result<std::unique_ptr<RunBackend>> make_run_backend(const EngineState& s) {
  if (s.info.backend == BackendKind::kCuda) return make_cuda_run(s);
  if (!s.cpu) return unsupported("this engine's backend '{}' cannot run here", backend_name(s.info.backend));
  return make_cpu_run(s);
}

}  // namespace kiln
