// A host tensor: dtype, concrete dims and shared, contiguous row-major storage.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled storage of the right size.
  Tensor(DType dtype, std::vector<int64_t> dims);
  // Storage of the right size whose contents are unspecified, for callers that write every byte (a weight
  // read from a file): zero-filling hundreds of MB first costs load time.
  static Tensor uninitialized(DType dtype, std::vector<int64_t> dims);
  // Like the constructor (zero-filled) or uninitialized(), but a size that overflows, fails to allocate or
  // exceeds the host memory limit (KILN_HOST_MEMORY_LIMIT, docs/cli.md) is an error that gives the tensor and
  // its byte count, never an exception. `what` names the tensor for that message ("output 'y' of node 'n'").
  static Result<Tensor> allocate(DType dtype, std::vector<int64_t> dims, std::string_view what, bool zero = true);
  // Wraps caller memory without copying; the caller keeps it alive.
  static Tensor wrap(DType dtype, std::vector<int64_t> dims, void* data);
  template <class T>
  static Tensor from_vector(DType dtype, std::vector<int64_t> dims, const std::vector<T>& values);
  static Tensor scalar_i64(int64_t v);
  static Tensor scalar_f32(float v);

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  size_t rank() const { return dims_.size(); }
  int64_t dim(size_t i) const { return dims_[i]; }
  // Both saturate (INT64_MAX, SIZE_MAX) when the dims overflow, so no allocation can succeed at a wrapped size.
  int64_t numel() const;
  size_t nbytes() const;

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <class T>
  T* data() { return static_cast<T*>(data_); }
  template <class T>
  const T* data() const { return static_cast<const T*>(data_); }

  // Same storage, new dims with the same element count.
  Tensor reshaped(std::vector<int64_t> dims) const;
  // Deep copy.
  Tensor clone() const;
  // Any element value read as double (bool/int/float dtypes); for shape and index tensors.
  double get_as_double(int64_t flat_index) const;
  int64_t get_as_int(int64_t flat_index) const;
  std::vector<int64_t> to_int_vector() const;
  std::string describe() const;  // "f32[2,3]"

 private:
  DType dtype_ = DType::kUndefined;
  std::vector<int64_t> dims_;
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
};

template <class T>
Tensor Tensor::from_vector(DType dtype, std::vector<int64_t> dims, const std::vector<T>& values) {
  Tensor t(dtype, std::move(dims));
  auto* p = t.data<T>();
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.numel(); ++i) p[i] = values[i];
  return t;
}

}  // namespace kiln
