// The explicit table of CUDA kernel files: src/backends/cuda/kernels/<name>.cu (or .cpp) defines
// register_cuda_<name>(KernelTable&).
#pragma once
#include "backends/cuda/kernel.h"

namespace kiln::cuda {

#define KILN_CUDA_KERNEL_FILES(X) \
  X(views)                     \
  X(transpose)                 \
  X(slice)                     \
  X(concat_split)              \
  X(gather)                    \
  X(scatter)                   \
  X(tile)                      \
  X(pad)                       \
  X(trilu)                     \
  X(cum_sum)                   \
  X(range_fill)                \
  X(one_hot)                   \
  X(resize)                    \
  X(softmax)                   \
  X(attention)                 \
  X(layer_norm)                \
  X(fused_add_layer_norm)      \
  X(reduce)                    \
  X(batch_norm)                \
  X(unary)                     \
  X(binary)                    \
  X(where)                     \
  X(cast)                      \
  X(matmul)                    \
  X(fused_matmul)              \
  X(pointwise_chain)           \
  X(conv)                      \
  X(fused_conv)                \
  X(pool)

#define KILN_DECLARE_CUDA_FILE(name) void register_cuda_##name(KernelTable& t);
KILN_CUDA_KERNEL_FILES(KILN_DECLARE_CUDA_FILE)
#undef KILN_DECLARE_CUDA_FILE

}  // namespace kiln::cuda
