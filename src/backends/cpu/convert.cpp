#include <cmath>
#include <cstring>

#include "backends/cpu/dispatch.h"
#include "kiln/half.h"

namespace kiln::cpu {

namespace {

template <class To>
To from_double(double v) {
  if constexpr (std::is_floating_point_v<To>) {
    return static_cast<To>(v);
  } else {
    if (std::isnan(v)) return To(0);
    // Clamp so out-of-range floats never hit undefined behaviour.
    double lo = static_cast<double>(std::numeric_limits<To>::lowest());
    double hi = static_cast<double>(std::numeric_limits<To>::max());
    if (v <= lo) return std::numeric_limits<To>::lowest();
    if (v >= hi) return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  }
}

}  // namespace

Tensor convert_tensor(const Tensor& in, DType to) {
  Tensor out(to, in.dims());
  const int64_t n = in.numel();
  if (in.dtype() == to) {
    if (in.nbytes()) std::memcpy(out.raw(), in.raw(), in.nbytes());
    return out;
  }
  // Integer -> integer keeps exact 64-bit values (wrapping like C), everything else goes through double.
  const bool int_to_int = is_integer(in.dtype()) && is_integer(to);
  for (int64_t i = 0; i < n; ++i) {
    switch (to) {
      case DType::kF16: out.data<uint16_t>()[i] = float_to_half(static_cast<float>(in.get_as_double(i))); break;
      case DType::kBF16: out.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(in.get_as_double(i))); break;
      case DType::kBool: out.data<uint8_t>()[i] = in.get_as_double(i) != 0.0 ? 1 : 0; break;
      default:
        dispatch_all(to, [&](auto tag) {
          using T = typename decltype(tag)::type;
          if (int_to_int) {
            out.data<T>()[i] = static_cast<T>(in.get_as_int(i));
          } else if (in.dtype() == DType::kU64) {
            out.data<T>()[i] = from_double<T>(static_cast<double>(in.data<uint64_t>()[i]));
          } else {
            out.data<T>()[i] = from_double<T>(in.get_as_double(i));
          }
        });
    }
  }
  return out;
}

}  // namespace kiln::cpu
