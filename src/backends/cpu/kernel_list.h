// The explicit table of CPU kernel files: src/backends/cpu/kernels/<name>.cpp defines register_cpu_<name>().
#pragma once
#include "backends/cpu/kernel.h"

namespace kiln::cpu {

#define KILN_CPU_KERNEL_FILES(X) \
  X(max_unpool)                  \
  X(resize)                      \
  X(grid_sample)                 \
  X(roi_align)                   \
  X(reduce)                      \
  X(arg_max_min)                 \
  X(softmax)                     \
  X(layer_normalization)         \
  X(batch_normalization)         \
  X(instance_normalization)      \
  X(lrn)                         \
  X(mean_variance_normalization) \
  X(rms_normalization)           \
  X(fused_add_layer_norm)        \
  X(fused_attention)             \
  X(attention)                   \
  X(cum_sum)                     \
  X(top_k)                       \
  X(nll_loss)                    \
  X(softmax_cross_entropy_loss)  \
  X(einsum)                      \
  X(det)                         \
  X(unique)                      \
  X(non_max_suppression)         \
  X(window_functions)            \
  X(mel_weight_matrix)           \
  X(dft)                         \
  X(tfidf_vectorizer)            \
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
  X(fused_conv)                  \
  X(conv_transpose)              \
  X(pool)                        \
  X(quantize_linear)             \
  X(matmul_integer)              \
  X(conv_integer)                \
  X(control_flow)        \
  X(binary_elementwise)          \
  X(unary_elementwise)           \
  X(constant)                    \
  X(identity)                    \
  X(shape)                       \
  X(reshape)                     \
  X(cast)                        \
  X(fused_matmul)                \
  X(pointwise_chain)             \
  X(matmul)

#define KILN_DECLARE_CPU_FILE(name) void register_cpu_##name(KernelTable& t);
KILN_CPU_KERNEL_FILES(KILN_DECLARE_CPU_FILE)
#undef KILN_DECLARE_CPU_FILE

}  // namespace kiln::cpu
