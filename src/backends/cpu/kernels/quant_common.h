// Rounding, saturation and zero-point helpers shared by the quantized CPU kernels.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "backends/cpu/dispatch.h"
#include "kiln/tensor.h"

namespace kiln::cpu {

// ONNX quantization rounds half to even, then saturates to the target type; NaN maps to 0.
template <class Q>
Q saturate_round(double v) {
  if (std::isnan(v)) return Q(0);
  double r = std::nearbyint(v);
  r = std::clamp(r, static_cast<double>(std::numeric_limits<Q>::lowest()),
                 static_cast<double>(std::numeric_limits<Q>::max()));
  return static_cast<Q>(r);
}

// Any integer tensor's elements as int32 (quantized values and their zero points fit).
inline std::vector<int32_t> to_i32(const Tensor& t) {
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = static_cast<int32_t>(t.get_as_int(i));
  return out;
}

// A scale or zero point given per tensor (one element) or broadcastable to dims from param_dims (numpy
// alignment), read out once per element of dims. Null or empty params read as `fallback`.
inline std::vector<double> expand_param(const Tensor* p, std::vector<int64_t> param_dims,
                                        const std::vector<int64_t>& dims, double fallback = 0.0) {
  const int64_t n = num_elements(dims);
  if (!p || p->numel() == 0) return std::vector<double>(static_cast<size_t>(n), fallback);
  if (p->numel() == 1) return std::vector<double>(static_cast<size_t>(n), p->get_as_double(0));
  while (param_dims.size() > dims.size() && param_dims.front() == 1) param_dims.erase(param_dims.begin());
  const auto ps = broadcast_strides(param_dims, dims);
  const int64_t rank = static_cast<int64_t>(dims.size());
  std::vector<int64_t> idx(dims.size(), 0);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < rank; ++d) off += idx[d] * ps[d];
    out[i] = p->get_as_double(off);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

// x - zp as int32, zp broadcast as expand_param does.
inline std::vector<int32_t> subtract_zero_point(const Tensor& x, const Tensor* zp, std::vector<int64_t> zp_dims) {
  std::vector<int32_t> out = to_i32(x);
  const std::vector<double> z = expand_param(zp, std::move(zp_dims), x.dims());
  for (size_t i = 0; i < out.size(); ++i) out[i] -= static_cast<int32_t>(z[i]);
  return out;
}

}  // namespace kiln::cpu
