// FusedMatMul's attribute values, shared by its op file, the pass that makes it and its kernels.
#pragma once
#include <string>
#include <string_view>

namespace kiln::ops {

enum class MatMulActivation { kNone, kRelu, kGeluErf, kGeluTanh };

// "none", "relu", "gelu_erf", "gelu_tanh" (the activation attribute); false for anything else.
inline bool parse_matmul_activation(std::string_view s, MatMulActivation* out) {
  if (s == "none")
    *out = MatMulActivation::kNone;
  else if (s == "relu")
    *out = MatMulActivation::kRelu;
  else if (s == "gelu_erf")
    *out = MatMulActivation::kGeluErf;
  else if (s == "gelu_tanh")
    *out = MatMulActivation::kGeluTanh;
  else
    return false;
  return true;
}

inline const char* matmul_activation_name(MatMulActivation a) {
  switch (a) {
    case MatMulActivation::kRelu:
      return "relu";
    case MatMulActivation::kGeluErf:
      return "gelu_erf";
    case MatMulActivation::kGeluTanh:
      return "gelu_tanh";
    default:
      return "none";
  }
}

}  // namespace kiln::ops
