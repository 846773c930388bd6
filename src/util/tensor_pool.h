// Host tensors by content: a tensor whose dtype and bytes equal one seen before shares that one's storage. The
// members of an engine bundle hold one copy of each distinct weight this way (and so upload it once).
#pragma once
#include <cstdint>
#include <unordered_map>

#include "kiln/tensor.h"

namespace kiln {

class TensorPool {
 public:
  // t itself the first time its content is seen; later, the first such tensor's storage with t's dims.
  Tensor intern(const Tensor& t);
  size_t shared_bytes() const { return shared_bytes_; }  // bytes that interning saved

 private:
  std::unordered_multimap<uint64_t, Tensor> by_hash_;
  size_t shared_bytes_ = 0;
};

}  // namespace kiln
