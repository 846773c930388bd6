#include "kiln/random_tensor.h"

#include <fmt/format.h>

#include "kiln/half.h"

namespace kiln {

Result<Tensor> random_tensor(DType dtype, const std::vector<int64_t>& dims, std::mt19937_64& rng,
                             const std::string& what) {
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::allocate(dtype, dims, "random data for " + what));
  std::uniform_real_distribution<double> uf(-1.0, 1.0);
  std::uniform_int_distribution<int> ui(0, 9);
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dtype) {
      case DType::kF32: t.data<float>()[i] = static_cast<float>(uf(rng)); break;
      case DType::kF64: t.data<double>()[i] = uf(rng); break;
      case DType::kF16: t.data<uint16_t>()[i] = float_to_half(static_cast<float>(uf(rng))); break;
      case DType::kBF16: t.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(uf(rng))); break;
      case DType::kBool: t.data<uint8_t>()[i] = static_cast<uint8_t>(ui(rng) % 2); break;
      case DType::kI64: t.data<int64_t>()[i] = ui(rng); break;
      case DType::kI32: t.data<int32_t>()[i] = ui(rng); break;
      case DType::kU8: t.data<uint8_t>()[i] = static_cast<uint8_t>(ui(rng)); break;
      case DType::kI8: t.data<int8_t>()[i] = static_cast<int8_t>(ui(rng)); break;
      default:
        return Status(StatusCode::kUnsupported,
                      fmt::format("cannot make random data for {} of dtype {}", what, dtype_name(dtype)));
    }
  }
  return t;
}

}  // namespace kiln
