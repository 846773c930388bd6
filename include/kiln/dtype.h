// Element types. The numeric values match ONNX TensorProto.DataType so files map one to one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln {

enum class DType : int32_t {
  kUndefined = 0,
  kF32 = 1,
  kU8 = 2,
  kI8 = 3,
  kU16 = 4,
  kI16 = 5,
  kI32 = 6,
  kI64 = 7,
  kString = 8,
  kBool = 9,
  kF16 = 10,
  kF64 = 11,
  kU32 = 12,
  kU64 = 13,
  kBF16 = 16,
};

// Bytes per element; 0 for kUndefined and kString.
size_t dtype_size(DType t);
// "f32", "f16", "bf16", "i64", "bool"…
std::string_view dtype_name(DType t);
// Parses dtype_name() output and numpy-style names ("float32", "int64").
std::optional<DType> parse_dtype(std::string_view name);
std::optional<DType> dtype_from_onnx(int32_t onnx_type);
bool is_float(DType t);    // f16, bf16, f32, f64
bool is_integer(DType t);  // signed or unsigned integer (not bool)
bool is_signed(DType t);

}  // namespace kiln
