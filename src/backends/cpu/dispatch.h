// Dtype dispatch and index helpers for CPU kernels.
#pragma once
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/tensor.h"

namespace kiln::cpu {

template <class T>
struct TypeTag {
  using type = T;
};

// Calls fn(TypeTag<T>{}) for the C++ type of dtype. f16/bf16 arrive as f32 in kernels (see KernelDef),
// bool as uint8_t. Returns false for dtypes not in the set.
template <class Fn>
bool dispatch_all(DType t, Fn&& fn) {
  switch (t) {
    case DType::kF32: fn(TypeTag<float>{}); return true;
    case DType::kF64: fn(TypeTag<double>{}); return true;
    case DType::kI8: fn(TypeTag<int8_t>{}); return true;
    case DType::kU8: fn(TypeTag<uint8_t>{}); return true;
    case DType::kI16: fn(TypeTag<int16_t>{}); return true;
    case DType::kU16: fn(TypeTag<uint16_t>{}); return true;
    case DType::kI32: fn(TypeTag<int32_t>{}); return true;
    case DType::kU32: fn(TypeTag<uint32_t>{}); return true;
    case DType::kI64: fn(TypeTag<int64_t>{}); return true;
    case DType::kU64: fn(TypeTag<uint64_t>{}); return true;
    case DType::kBool: fn(TypeTag<uint8_t>{}); return true;
    default: return false;
  }
}

template <class Fn>
bool dispatch_float(DType t, Fn&& fn) {
  switch (t) {
    case DType::kF32: fn(TypeTag<float>{}); return true;
    case DType::kF64: fn(TypeTag<double>{}); return true;
    default: return false;
  }
}

// Copies elements of any dtype into a same-sized tensor by raw bytes (layout ops).
inline size_t elem_size(const Tensor& t) { return dtype_size(t.dtype()); }

// Row-major strides.
inline std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

// Strides of `in` viewed as broadcast to `out` (0 where broadcast), aligned right.
inline std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
  std::vector<int64_t> s(out.size(), 0);
  auto is = strides_of(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = in[i] == 1 ? 0 : is[i];
  return s;
}

// Converts between any numeric dtypes elementwise (f16/bf16 included); used by Cast and the half wrapper.
Tensor convert_tensor(const Tensor& in, DType to);

}  // namespace kiln::cpu
