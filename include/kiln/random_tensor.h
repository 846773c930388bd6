// The random data kiln feeds an input nobody gave (kiln run, kiln compare, kiln extract's check): floats uniform
// in [-1, 1), integers in [0, 10) (small enough to be indices or token ids), bools 50/50.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln {

// Draws from rng, so several inputs made in turn from one generator differ. `what` names the tensor in errors
// ("input 'x'"); a dtype without such data (strings) is kUnsupported.
Result<Tensor> random_tensor(DType dtype, const std::vector<int64_t>& dims, std::mt19937_64& rng,
                             const std::string& what);

}  // namespace kiln
