// Random inputs for kiln compare (the distribution kiln run uses) and dtype conversion between model and engine.
#include <fmt/format.h>

#include <random>

#include "backends/cpu/dispatch.h"
#include "kiln/compare.h"
#include "kiln/random_tensor.h"

namespace kiln::compare {

Result<Tensor> random_tensor(DType dtype, const std::vector<int64_t>& dims, uint64_t seed, const std::string& what) {
  std::mt19937_64 rng(seed);
  auto t = kiln::random_tensor(dtype, dims, rng, what);
  if (!t.ok() && t.status().code() == StatusCode::kUnsupported)
    return Status(StatusCode::kUnsupported, t.status().message() + "; pass it with --input NAME=FILE.npy");
  return t;
}

Tensor convert(const Tensor& t, DType to) { return t.dtype() == to ? t : cpu::convert_tensor(t, to); }

}  // namespace kiln::compare
