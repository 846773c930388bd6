// A tensor in GPU memory. Storage is shared (views such as Reshape alias their input) and returns to the
// owning context's pool when the last view goes.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/shape.h"

namespace kiln::cuda {

struct DeviceTensor {
  DType dtype = DType::kUndefined;
  std::vector<int64_t> dims;
  void* data = nullptr;
  std::shared_ptr<void> storage;  // null for caller-owned memory

  bool defined() const { return dtype != DType::kUndefined; }
  int64_t numel() const { return num_elements(dims); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  size_t rank() const { return dims.size(); }
  template <class T>
  T* ptr() const { return static_cast<T*>(data); }
  DeviceTensor view(std::vector<int64_t> new_dims) const {
    DeviceTensor t = *this;
    t.dims = std::move(new_dims);
    return t;
  }
};

}  // namespace kiln::cuda
