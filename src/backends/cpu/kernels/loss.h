// The negative log-likelihood both loss kernels share.
#pragma once
#include "backends/cpu/kernel.h"

namespace kiln::cpu {

// log_prob holds input 0's shape [N, C, d...] in double; target is input 1, weight the optional input 2.
// Writes the loss (per element for reduction 'none', else a scalar) into output 0.
Status negative_log_likelihood(KernelContext& ctx, const std::vector<double>& log_prob);

}  // namespace kiln::cpu
