#include "onnx/tensor_proto.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <kiln_onnx/onnx.pb.h>

#include "kiln/shape.h"
#include "util/error.h"
#include "util/file.h"
#include "kiln/half.h"

namespace kiln::onnx {

namespace {

template <class Src, class Dst>
void copy_field(const Src& field, Tensor& t) {
  auto* d = t.data<Dst>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<Dst>(field.Get(static_cast<int>(i)));
}

// Where external data lives and how much of it the tensor takes, checked before anything is allocated.
struct ExternalSpan {
  std::string location;
  int64_t offset = 0;
};

Result<ExternalSpan> external_span(const kiln_onnx::TensorProto& p, const std::string& what, int64_t want) {
  ExternalSpan span;
  int64_t length = -1;
  for (const auto& kv : p.external_data()) {
    int64_t* field = kv.key() == "offset" ? &span.offset : kv.key() == "length" ? &length : nullptr;
    if (kv.key() == "location") span.location = kv.value();
    if (!field) continue;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(kv.value().c_str(), &end, 10);
    if (kv.value().empty() || *end != '\0' || errno == ERANGE || v < 0)
      return invalid_model("{}: external data {} '{}' is not a byte count", what, kv.key(), kv.value());
    *field = v;
  }
  if (span.location.empty()) return invalid_model("{}: external data has no 'location'", what);
  if (length >= 0 && length != want)
    return invalid_model("{}: external data length {} does not match the {} bytes its dims need", what, length,
                         want);
  return span;
}

// An external-data file must sit in the model's folder or below it: a model is not allowed to read
// /etc/passwd or ../../secrets into its weights.
Result<std::filesystem::path> external_path(const std::string& base_dir, const std::string& location,
                                            const std::string& what) {
  const std::filesystem::path rel(location);
  bool escapes = rel.is_absolute() || rel.has_root_name();
  int depth = 0;
  for (const auto& part : rel.lexically_normal()) {
    if (part == "..") escapes |= --depth < 0;
    else if (part != "." && !part.empty()) ++depth;
  }
  if (escapes)
    return invalid_model("{}: external data location '{}' points outside the model's folder (it must be a path "
                         "relative to the model, inside its folder)",
                         what, location);
  return std::filesystem::path(base_dir) / rel;
}

Status read_external(const kiln_onnx::TensorProto& p, const std::string& base_dir, const std::string& what,
                     std::string_view weights, DType dt, const std::vector<int64_t>& dims, int64_t want,
                     Tensor& t) {
  KILN_ASSIGN_OR_RETURN(ExternalSpan span, external_span(p, what, want));
  if (span.location == "@weights") {
    if (span.offset > static_cast<int64_t>(weights.size()) ||
        want > static_cast<int64_t>(weights.size()) - span.offset)
      return make_error(StatusCode::kInvalidEngine, "{}: weights section too short for offset {} + {} bytes", what,
                        span.offset, want);
    t = Tensor::uninitialized(dt, dims);
    if (want) std::memcpy(t.raw(), weights.data() + span.offset, static_cast<size_t>(want));
    return Status();
  }
  KILN_ASSIGN_OR_RETURN(std::filesystem::path path, external_path(base_dir, span.location, what));
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("{}: external data file '{}' not found (it must sit next to the model)", what, path.string());
  f.seekg(0, std::ios::end);
  const int64_t size = f.tellg();
  if (size < 0 || span.offset > size || want > size - span.offset)
    return invalid_model("{}: external data '{}' is {} bytes, too short for offset {} + {} bytes", what,
                         path.string(), size, span.offset, want);
  t = Tensor::uninitialized(dt, dims);
  f.seekg(span.offset);
  f.read(static_cast<char*>(t.raw()), want);
  if (!f) return make_error(StatusCode::kIoError, "{}: reading '{}' failed", what, path.string());
  return Status();
}

// Elements and bytes of a tensor of these dims, or an error when either does not fit in int64.
Status checked_size(DType dt, const std::vector<int64_t>& dims, const std::string& what, int64_t* elements,
                    int64_t* bytes) {
  const int64_t es = std::max<int64_t>(1, static_cast<int64_t>(dtype_size(dt)));
  int64_t n = 1;
  bool zero = false;
  for (int64_t d : dims) {
    if (d < 0) return invalid_model("{}: negative dim {}", what, d);
    zero |= d == 0;
  }
  if (!zero)
    for (int64_t d : dims) {
      if (n > std::numeric_limits<int64_t>::max() / es / d)
        return invalid_model("{}: dims {} hold more bytes than fit in 64 bits", what, dims_to_string(dims));
      n *= d;
    }
  *elements = zero ? 0 : n;
  *bytes = *elements * es;
  return Status();
}

}  // namespace

Result<Tensor> tensor_from_proto(const kiln_onnx::TensorProto& p, const std::string& base_dir,
                                 const std::string& what, std::string_view weights) {
  auto dt = dtype_from_onnx(p.data_type());
  if (!dt) return unsupported("{}: ONNX data type {} is not supported", what, p.data_type());
  if (*dt == DType::kString) return unsupported("{}: string tensors are not supported", what);
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  int64_t n = 0, want = 0;
  KILN_RETURN_IF_ERROR(checked_size(*dt, dims, what, &n, &want));
  // The data's size is checked before the tensor is allocated, so wrong dims give an error, not a huge
  // allocation. External and raw data fill every byte: no zero-fill first.
  Tensor t;
  if (p.data_location() == kiln_onnx::TensorProto::EXTERNAL) {
    KILN_RETURN_IF_ERROR(read_external(p, base_dir, what, weights, *dt, dims, want, t));
    return t;
  }
  if (p.has_raw_data()) {
    if (static_cast<int64_t>(p.raw_data().size()) != want)
      return invalid_model("{}: raw_data has {} bytes but {} {} needs {}", what, p.raw_data().size(),
                           dtype_name(*dt), dims_to_string(dims), want);
    t = Tensor::uninitialized(*dt, dims);
    if (want) std::memcpy(t.raw(), p.raw_data().data(), static_cast<size_t>(want));
    return t;
  }
  auto check = [&](int have) -> Status {
    if (have != n)
      return invalid_model("{}: has {} values but {} {} needs {}", what, have, dtype_name(*dt),
                           dims_to_string(dims), n);
    t = Tensor(*dt, dims);
    return Status();
  };
  switch (*dt) {
    case DType::kF32: KILN_RETURN_IF_ERROR(check(p.float_data_size())); copy_field<decltype(p.float_data()), float>(p.float_data(), t); break;
    case DType::kF64: KILN_RETURN_IF_ERROR(check(p.double_data_size())); copy_field<decltype(p.double_data()), double>(p.double_data(), t); break;
    case DType::kI64: KILN_RETURN_IF_ERROR(check(p.int64_data_size())); copy_field<decltype(p.int64_data()), int64_t>(p.int64_data(), t); break;
    case DType::kU32: case DType::kU64:
      KILN_RETURN_IF_ERROR(check(p.uint64_data_size()));
      if (*dt == DType::kU32) copy_field<decltype(p.uint64_data()), uint32_t>(p.uint64_data(), t);
      else copy_field<decltype(p.uint64_data()), uint64_t>(p.uint64_data(), t);
      break;
    // Narrow types (and f16/bf16 bit patterns) travel in int32_data.
    case DType::kI32: KILN_RETURN_IF_ERROR(check(p.int32_data_size())); copy_field<decltype(p.int32_data()), int32_t>(p.int32_data(), t); break;
    case DType::kI16: KILN_RETURN_IF_ERROR(check(p.int32_data_size())); copy_field<decltype(p.int32_data()), int16_t>(p.int32_data(), t); break;
    case DType::kU16: case DType::kF16: case DType::kBF16:
      KILN_RETURN_IF_ERROR(check(p.int32_data_size())); copy_field<decltype(p.int32_data()), uint16_t>(p.int32_data(), t); break;
    case DType::kI8: KILN_RETURN_IF_ERROR(check(p.int32_data_size())); copy_field<decltype(p.int32_data()), int8_t>(p.int32_data(), t); break;
    case DType::kU8: case DType::kBool:
      KILN_RETURN_IF_ERROR(check(p.int32_data_size())); copy_field<decltype(p.int32_data()), uint8_t>(p.int32_data(), t); break;
    default: return unsupported("{}: data type {} is not supported", what, dtype_name(*dt));
  }
  return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, kiln_onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
}

Result<Tensor> load_tensor_pb(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  kiln_onnx::TensorProto p;
  if (bytes.empty() || !p.ParseFromString(bytes))
    return invalid_argument("'{}' is not a serialized ONNX TensorProto (.pb)", path);
  return tensor_from_proto(p, std::filesystem::path(path).parent_path().string(), "tensor file '" + path + "'");
}

Status save_tensor_pb(const Tensor& t, const std::string& name, const std::string& path) {
  kiln_onnx::TensorProto p;
  tensor_to_proto(t, name, &p);
  return write_file_atomic(path, p.SerializeAsString());
}

}  // namespace kiln::onnx
