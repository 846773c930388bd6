#include "util/checked_math.h"

namespace kiln {

std::optional<int64_t> checked_num_elements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return std::nullopt;
    auto next = checked_mul(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

std::optional<int64_t> checked_nbytes(DType dtype, const std::vector<int64_t>& dims) {
  auto n = checked_num_elements(dims);
  if (!n) return std::nullopt;
  return checked_mul(*n, static_cast<int64_t>(dtype_size(dtype)));
}

}  // namespace kiln
