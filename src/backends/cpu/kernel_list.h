// The explicit table of CPU kernel files: src/backends/cpu/kernels/<name>.cpp defines register_cpu_<name>().
#pragma once
#include "backends/cpu/kernel.h"

namespace kiln::cpu {

#define KILN_CPU_KERNEL_FILES(X) \
  X(rnn)                         \
  X(transpose)                   \
  X(flatten)                     \
  X(squeeze)                     \
  X(unsqueeze)                   \
  X(concat)                      \
  X(split)                       \
  X(slice)                       \
  X(gather)                      \
  X(gather_elements)             \
  X(gather_nd)                   \
  X(scatter)                     \
  X(expand)                      \
  X(tile)                        \
  X(where)                       \
  X(range)                       \
  X(trilu)                       \
  X(pad)                         \
  X(depth_to_space)              \
  X(one_hot)                     \
  X(compress)                    \
  X(non_zero)                    \
  X(eye_like)                    \
  X(reverse_sequence)            \
  X(gemm)                        \
  X(conv)                        \
  X(conv_transpose)              \
  X(pool)                        \
  X(quantize_linear)             \
  X(matmul_integer)              \
  X(conv_integer)                \
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
