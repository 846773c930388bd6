// Helpers for the data-movement kernels (Transpose, Slice, Gather*, Pad…): they move elements as unsigned
// integers of the element's width, so one loop serves every dtype, f16/bf16 and bool included.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cpu/dispatch.h"

namespace kiln::cpu {

// Calls fn(TypeTag<U>{}) with U the unsigned integer as wide as one element; false for other widths
// (strings).
template <class Fn>
bool dispatch_bytes(size_t elem_bytes, Fn&& fn) {
  switch (elem_bytes) {
    case 1: fn(TypeTag<uint8_t>{}); return true;
    case 2: fn(TypeTag<uint16_t>{}); return true;
    case 4: fn(TypeTag<uint32_t>{}); return true;
    case 8: fn(TypeTag<uint64_t>{}); return true;
    default: return false;
  }
}

// Visits every index of dims in row-major order as fn(flat, offset), where offset = base + sum(idx[d] *
// strides[d]). Strides may be 0 (broadcast) or negative (reversed slices).
template <class Fn>
void for_each_strided(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides, int64_t base,
                      Fn&& fn) {
  const int64_t n = num_elements(dims);
  if (n == 0) return;
  const int64_t rank = static_cast<int64_t>(dims.size());
  std::vector<int64_t> idx(dims.size(), 0);
  int64_t off = base;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, off);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++idx[d] < dims[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (dims[d] - 1);
      idx[d] = 0;
    }
  }
}

// Copies out[i] = in[offset(i)] for every output element, by element width.
inline bool strided_copy(const Tensor& in, Tensor& out, const std::vector<int64_t>& strides, int64_t base) {
  return dispatch_bytes(dtype_size(in.dtype()), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = in.data<U>();
    U* dst = out.data<U>();
    for_each_strided(out.dims(), strides, base, [&](int64_t o, int64_t i) { dst[o] = src[i]; });
  });
}

// Product of dims[begin, end).
inline int64_t dims_product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < dims.size(); ++i) p *= dims[i];
  return p;
}

}  // namespace kiln::cpu
