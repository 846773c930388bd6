// Overflow-checked size arithmetic. Dims, attributes, initializer sizes and engine sections come from files a
// user did not write, so every element count, byte size and offset derived from them goes through these: a
// product that wraps is how a crafted model turns into an undersized allocation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "kiln/dtype.h"

namespace kiln {

// Each returns nullopt when the exact result does not fit in T.
template <class T>
std::optional<T> checked_add(T a, T b) {
  T r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
template <class T>
std::optional<T> checked_sub(T a, T b) {
  T r;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}
template <class T>
std::optional<T> checked_mul(T a, T b) {
  T r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// The product of static dims; nullopt when it overflows int64 or a dim is negative.
std::optional<int64_t> checked_num_elements(const std::vector<int64_t>& dims);
// numel * dtype_size as a byte count; nullopt past INT64_MAX bytes (no host or device can hold that).
std::optional<int64_t> checked_nbytes(DType dtype, const std::vector<int64_t>& dims);
// Whether a value fits a kernel's 32-bit int indexing.
inline bool fits_int32(int64_t v) { return v >= 0 && v <= INT32_MAX; }

}  // namespace kiln
