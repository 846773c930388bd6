#include "kiln/dtype.h"

#include <string>

namespace kiln {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: case DType::kI32: case DType::kU32: return 4;
    case DType::kU8: case DType::kI8: case DType::kBool: return 1;
    case DType::kU16: case DType::kI16: case DType::kF16: case DType::kBF16: return 2;
    case DType::kI64: case DType::kF64: case DType::kU64: return 8;
    case DType::kString: case DType::kUndefined: return 0;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kUndefined: return "undefined";
    case DType::kF32: return "f32";
    case DType::kU8: return "u8";
    case DType::kI8: return "i8";
    case DType::kU16: return "u16";
    case DType::kI16: return "i16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kString: return "string";
    case DType::kBool: return "bool";
    case DType::kF16: return "f16";
    case DType::kF64: return "f64";
    case DType::kU32: return "u32";
    case DType::kU64: return "u64";
    case DType::kBF16: return "bf16";
  }
  return "undefined";
}

std::optional<DType> parse_dtype(std::string_view name) {
  static const std::pair<std::string_view, DType> kNames[] = {
      {"f32", DType::kF32},     {"float32", DType::kF32}, {"float", DType::kF32},  {"f16", DType::kF16},
      {"float16", DType::kF16}, {"half", DType::kF16},    {"bf16", DType::kBF16},  {"bfloat16", DType::kBF16},
      {"f64", DType::kF64},     {"float64", DType::kF64}, {"double", DType::kF64}, {"i8", DType::kI8},
      {"int8", DType::kI8},     {"u8", DType::kU8},       {"uint8", DType::kU8},   {"i16", DType::kI16},
      {"int16", DType::kI16},   {"u16", DType::kU16},     {"uint16", DType::kU16}, {"i32", DType::kI32},
      {"int32", DType::kI32},   {"u32", DType::kU32},     {"uint32", DType::kU32}, {"i64", DType::kI64},
      {"int64", DType::kI64},   {"u64", DType::kU64},     {"uint64", DType::kU64}, {"bool", DType::kBool},
  };
  for (const auto& [n, t] : kNames)
    if (n == name) return t;
  return std::nullopt;
}

std::optional<DType> dtype_from_onnx(int32_t onnx_type) {
  switch (onnx_type) {
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9: case 10: case 11: case 12:
    case 13: case 16:
      return static_cast<DType>(onnx_type);
    default:
      return std::nullopt;
  }
}

bool is_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64;
}
bool is_integer(DType t) {
  switch (t) {
    case DType::kU8: case DType::kI8: case DType::kU16: case DType::kI16: case DType::kI32:
    case DType::kI64: case DType::kU32: case DType::kU64:
      return true;
    default:
      return false;
  }
}
bool is_signed(DType t) {
  return t == DType::kI8 || t == DType::kI16 || t == DType::kI32 || t == DType::kI64 || is_float(t);
}

}  // namespace kiln
