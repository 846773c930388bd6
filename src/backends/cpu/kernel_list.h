// The explicit table of CPU kernel files: src/backends/cpu/kernels/<name>.cpp defines register_cpu_<name>().
#pragma once
#include "backends/cpu/kernel.h"

namespace kiln::cpu {

#define KILN_CPU_KERNEL_FILES(X) \
  X(binary_elementwise)          \
  X(unary_elementwise)           \
  X(constant)                    \
  X(identity)                    \
  X(shape)                       \
  X(reshape)                     \
  X(cast)                        \
  X(matmul)

#define KILN_DECLARE_CPU_FILE(name) void register_cpu_##name(KernelTable& t);
KILN_CPU_KERNEL_FILES(KILN_DECLARE_CPU_FILE)
#undef KILN_DECLARE_CPU_FILE

}  // namespace kiln::cpu
