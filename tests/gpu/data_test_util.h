// Helpers of the data-movement GPU tests (transpose, slice, concat/split, gather*, scatter*, tile, pad,
// trilu, cum_sum, range/fill, one_hot, resize): every dtype by element width, distinct values so a misplaced
// element shows, and index tensors. The comparison itself is ewtest::check (device inputs, optionally
// misaligned, and host inputs when they are large enough for the executor to send the node to the GPU).
#pragma once
#include <cstring>
#include <numeric>

#include "gpu/ew_test_util.h"

namespace kiln::datatest {

using Dims = std::vector<int64_t>;
using ewtest::sdims;
using testing::ModelBuilder;

// One dtype of every element width (1, 2, 4, 8 bytes), the half types and bool.
inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> v = {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kI32,
                                       DType::kI64, DType::kI8,  DType::kU8,   DType::kBool};
  return v;
}

// Pseudo-random values of dt, mostly distinct (floats in [-100, 100), integers over their range).
inline Tensor values(DType dt, const Dims& dims, uint64_t seed) {
  if (dt == DType::kF64) {
    Tensor r = ewtest::uniform(DType::kF32, dims, seed, -100, 100);
    Tensor t(DType::kF64, dims);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = r.data<float>()[i] * (1.0 + 1e-9);
    return t;
  }
  if (dt == DType::kBool) return gputest::random_tensor(DType::kBool, dims, seed);
  if (dt == DType::kU8) return ewtest::ints(dt, dims, seed, 0, 256);
  if (dt == DType::kI8) return ewtest::ints(dt, dims, seed, -128, 128);
  if (dt == DType::kI32 || dt == DType::kI64) return ewtest::ints(dt, dims, seed, -1000000, 1000000);
  return ewtest::uniform(dt, dims, seed, -100, 100);
}

// Integer tensor (i32 or i64) with the given values.
inline Tensor index_tensor(DType dt, const Dims& dims, const std::vector<int64_t>& v) {
  Tensor t(dt, dims);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DType::kI32)
      t.data<int32_t>()[i] = static_cast<int32_t>(v[i]);
    else
      t.data<int64_t>()[i] = v[i];
  }
  return t;
}

// Pseudo-random indices in [lo, hi).
inline Tensor random_indices(DType dt, const Dims& dims, uint64_t seed, int64_t lo, int64_t hi) {
  return ewtest::ints(dt, dims, seed, lo, hi);
}

inline std::string trace(const std::string& op, DType dt, const Dims& d, const std::string& more = "") {
  return op + " " + std::string(dtype_name(dt)) + dims_to_string(d) + (more.empty() ? "" : " " + more);
}

inline std::vector<int64_t> seq(int64_t n, int64_t from = 0) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

}  // namespace kiln::datatest
