// Small helpers for the reduction, normalization and loss kernels, which compute in double.
#pragma once
#include <vector>

#include "backends/cpu/dispatch.h"

namespace kiln::cpu {

inline std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(t.numel());
  dispatch_all(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = static_cast<double>(p[i]);
  });
  return v;
}

inline void write_doubles(Tensor& t, const std::vector<double>& v) {
  dispatch_all(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(v[i]);
  });
}

// t's values broadcast one-way to `dims` (right-aligned; t may carry extra leading 1s), flattened row-major.
inline std::vector<double> broadcast_doubles(const Tensor& t, const std::vector<int64_t>& dims) {
  std::vector<int64_t> td = t.dims();
  while (td.size() > dims.size() && td.front() == 1) td.erase(td.begin());
  const auto src = to_doubles(t);
  const auto strides = broadcast_strides(td, dims);
  const int64_t n = num_elements(dims);
  std::vector<double> out(n);
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < dims.size(); ++d) off += idx[d] * strides[d];
    out[i] = src[off];
    for (int64_t d = static_cast<int64_t>(dims.size()) - 1; d >= 0; --d) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

// Flat offsets of every index combination over the selected axes, row-major in axis order.
inline std::vector<int64_t> offsets_over(const std::vector<int64_t>& dims, const std::vector<bool>& select) {
  const auto strides = strides_of(dims);
  std::vector<int64_t> offs{0};
  for (size_t d = 0; d < dims.size(); ++d) {
    if (!select[d]) continue;
    std::vector<int64_t> next;
    next.reserve(offs.size() * dims[d]);
    for (int64_t o : offs)
      for (int64_t i = 0; i < dims[d]; ++i) next.push_back(o + i * strides[d]);
    offs = std::move(next);
  }
  return offs;
}

}  // namespace kiln::cpu
