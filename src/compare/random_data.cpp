// Random inputs for kiln compare (the distribution kiln run uses) and dtype conversion between model and engine.
#include <fmt/format.h>

#include <random>

#include "backends/cpu/dispatch.h"
#include "kiln/compare.h"
#include "util/half.h"

namespace kiln::compare {

Result<Tensor> random_tensor(DType dtype, const std::vector<int64_t>& dims, uint64_t seed, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::allocate(dtype, dims, "random data for " + what));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uf(-1.0, 1.0);
  // Integers stay small and non-negative: they are often indices (Gather) or token ids.
  std::uniform_int_distribution<int> ui(0, 9);
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dtype) {
      case DType::kF32: t.data<float>()[i] = static_cast<float>(uf(rng)); break;
      case DType::kF64: t.data<double>()[i] = uf(rng); break;
      case DType::kF16: t.data<uint16_t>()[i] = float_to_half(static_cast<float>(uf(rng))); break;
      case DType::kBF16: t.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(uf(rng))); break;
      case DType::kBool: t.data<uint8_t>()[i] = ui(rng) % 2; break;
      case DType::kI64: t.data<int64_t>()[i] = ui(rng); break;
      case DType::kI32: t.data<int32_t>()[i] = ui(rng); break;
      case DType::kU8: t.data<uint8_t>()[i] = static_cast<uint8_t>(ui(rng)); break;
      case DType::kI8: t.data<int8_t>()[i] = static_cast<int8_t>(ui(rng)); break;
      default:
        return Status(StatusCode::kUnsupported, fmt::format("cannot make random data for {} of dtype {}; pass it with "
                                                            "--input NAME=FILE.npy",
                                                            what, dtype_name(dtype)));
    }
  }
  return t;
}

Tensor convert(const Tensor& t, DType to) { return t.dtype() == to ? t : cpu::convert_tensor(t, to); }

}  // namespace kiln::compare
