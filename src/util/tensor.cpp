#include "kiln/tensor.h"

#include <cstring>
#include <fmt/format.h>

#include <limits>
#include <new>

#include "kiln/shape.h"
#include "util/checked_math.h"
#include "kiln/half.h"
#include "util/host_memory.h"

namespace kiln {

Tensor::Tensor(DType dtype, std::vector<int64_t> dims) : dtype_(dtype), dims_(std::move(dims)) {
  size_t bytes = nbytes();
  // Keep at least one byte so data() is never null, also for empty tensors.
  auto* p = new std::byte[bytes ? bytes : 1]();
  storage_ = std::shared_ptr<void>(p, [](void* q) { delete[] static_cast<std::byte*>(q); });
  data_ = p;
}

Tensor Tensor::uninitialized(DType dtype, std::vector<int64_t> dims) {
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  const size_t bytes = t.nbytes();
  auto* p = new std::byte[bytes ? bytes : 1];
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { delete[] static_cast<std::byte*>(q); });
  t.data_ = p;
  return t;
}

Result<Tensor> Tensor::allocate(DType dtype, std::vector<int64_t> dims, std::string_view what, bool zero) {
  const std::string desc = fmt::format("{}{}", dtype_name(dtype), dims_to_string(dims));
  auto bytes = checked_nbytes(dtype, dims);
  if (!bytes)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} is {}, whose size overflows a 64-bit byte count; its dims come from a corrupt or "
                              "crafted model or from inputs too large to be real",
                              what, desc));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> limit, host_memory_limit());
  if (limit && *bytes > *limit)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} is {} ({} bytes), more than {}={} bytes allows; use smaller shapes or raise the "
                              "limit",
                              what, desc, *bytes, kHostMemoryLimitEnv, *limit));
  try {
    return zero ? Tensor(dtype, std::move(dims)) : Tensor::uninitialized(dtype, std::move(dims));
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} is {} ({} bytes), more host memory than this machine could allocate; use smaller "
                              "shapes",
                              what, desc, *bytes));
  }
}

Tensor Tensor::wrap(DType dtype, std::vector<int64_t> dims, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.data_ = data;
  return t;
}

Tensor Tensor::scalar_i64(int64_t v) {
  Tensor t(DType::kI64, {});
  *t.data<int64_t>() = v;
  return t;
}

Tensor Tensor::scalar_f32(float v) {
  Tensor t(DType::kF32, {});
  *t.data<float>() = v;
  return t;
}

int64_t Tensor::numel() const { return num_elements(dims_); }
size_t Tensor::nbytes() const {
  // A wrapped product would allocate a small buffer for a huge shape; saturating makes `new` fail instead.
  auto bytes = checked_nbytes(dtype_, dims_);
  return bytes ? static_cast<size_t>(*bytes) : std::numeric_limits<size_t>::max();
}

Tensor Tensor::reshaped(std::vector<int64_t> dims) const {
  Tensor t = *this;
  t.dims_ = std::move(dims);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, dims_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

double Tensor::get_as_double(int64_t i) const {
  switch (dtype_) {
    case DType::kF32: return data<float>()[i];
    case DType::kF64: return data<double>()[i];
    case DType::kF16: return half_to_float(data<uint16_t>()[i]);
    case DType::kBF16: return bf16_to_float(data<uint16_t>()[i]);
    case DType::kI8: return data<int8_t>()[i];
    case DType::kU8: return data<uint8_t>()[i];
    case DType::kBool: return data<uint8_t>()[i] ? 1.0 : 0.0;
    case DType::kI16: return data<int16_t>()[i];
    case DType::kU16: return data<uint16_t>()[i];
    case DType::kI32: return data<int32_t>()[i];
    case DType::kU32: return data<uint32_t>()[i];
    case DType::kI64: return static_cast<double>(data<int64_t>()[i]);
    case DType::kU64: return static_cast<double>(data<uint64_t>()[i]);
    default: return 0.0;
  }
}

int64_t Tensor::get_as_int(int64_t i) const {
  switch (dtype_) {
    case DType::kI64: return data<int64_t>()[i];
    case DType::kU64: return static_cast<int64_t>(data<uint64_t>()[i]);
    case DType::kI32: return data<int32_t>()[i];
    case DType::kU32: return data<uint32_t>()[i];
    default: return static_cast<int64_t>(get_as_double(i));
  }
}

std::vector<int64_t> Tensor::to_int_vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[i] = get_as_int(i);
  return v;
}

std::string Tensor::describe() const { return fmt::format("{}{}", dtype_name(dtype_), dims_to_string(dims_)); }

}  // namespace kiln
