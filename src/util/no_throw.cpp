#include "util/no_throw.h"

#include <fmt/format.h>

#include "util/host_memory.h"

namespace kiln {

Status exception_status(std::string_view call, const std::exception* e, bool out_of_memory) {
  if (out_of_memory)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: ran out of host memory; use smaller shapes, free memory, or set {} to refuse "
                              "oversized tensors with a message naming them",
                              call, kHostMemoryLimitEnv));
  return Status(StatusCode::kInternal,
                fmt::format("{}: unexpected error ({}); this is a bug in kiln, please report it with the model",
                            call, e ? e->what() : "an unknown exception"));
}

}  // namespace kiln
