#include "onnx/tensor_proto.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <kiln_onnx/onnx.pb.h>

#include "util/error.h"
#include "util/file.h"
#include "util/half.h"

namespace kiln::onnx {

namespace {

template <class Src, class Dst>
void copy_field(const Src& field, Tensor& t) {
  auto* d = t.data<Dst>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<Dst>(field.Get(static_cast<int>(i)));
}

Status read_external(const kiln_onnx::TensorProto& p, const std::string& base_dir, const std::string& what,
                     std::string_view weights, Tensor& t) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::stoll(kv.value());
    else if (kv.key() == "length") length = std::stoll(kv.value());
  }
  if (location.empty()) return invalid_model("{}: external data has no 'location'", what);
  if (location == "@weights") {
    const int64_t want = static_cast<int64_t>(t.nbytes());
    if (offset < 0 || offset + want > static_cast<int64_t>(weights.size()))
      return make_error(StatusCode::kInvalidEngine, "{}: weights section too short for offset {} + {} bytes", what,
                        offset, want);
    if (want) std::memcpy(t.raw(), weights.data() + offset, static_cast<size_t>(want));
    return Status();
  }
  std::filesystem::path path = std::filesystem::path(base_dir) / location;
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("{}: external data file '{}' not found (it must sit next to the model)", what, path.string());
  f.seekg(0, std::ios::end);
  const int64_t size = f.tellg();
  const int64_t want = static_cast<int64_t>(t.nbytes());
  if (length >= 0 && length != want)
    return invalid_model("{}: external data length {} does not match {} ({} bytes)", what, length, t.describe(), want);
  if (offset < 0 || offset + want > size)
    return invalid_model("{}: external data '{}' is {} bytes, too short for offset {} + {} bytes", what,
                         path.string(), size, offset, want);
  f.seekg(offset);
  f.read(static_cast<char*>(t.raw()), want);
  if (!f) return make_error(StatusCode::kIoError, "{}: reading '{}' failed", what, path.string());
  return Status();
}

}  // namespace

Result<Tensor> tensor_from_proto(const kiln_onnx::TensorProto& p, const std::string& base_dir,
                                 const std::string& what, std::string_view weights) {
  auto dt = dtype_from_onnx(p.data_type());
  if (!dt) return unsupported("{}: ONNX data type {} is not supported", what, p.data_type());
  if (*dt == DType::kString) return unsupported("{}: string tensors are not supported", what);
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  for (int64_t d : dims)
    if (d < 0) return invalid_model("{}: negative dim {}", what, d);
  // External and raw data fill every byte (or fail, and t goes): no zero-fill first.
  const bool filled_whole = p.data_location() == kiln_onnx::TensorProto::EXTERNAL || p.has_raw_data();
  Tensor t = filled_whole ? Tensor::uninitialized(*dt, dims) : Tensor(*dt, dims);
  const int64_t n = t.numel();
  if (p.data_location() == kiln_onnx::TensorProto::EXTERNAL) {
    KILN_RETURN_IF_ERROR(read_external(p, base_dir, what, weights, t));
    return t;
  }
  if (p.has_raw_data()) {
    if (p.raw_data().size() != t.nbytes())
      return invalid_model("{}: raw_data has {} bytes but {} needs {}", what, p.raw_data().size(), t.describe(),
                           t.nbytes());
    if (t.nbytes()) std::memcpy(t.raw(), p.raw_data().data(), t.nbytes());
    return t;
  }
  auto check = [&](int have) -> Status {
    if (have != n && !(have == 0 && n == 0))
      return invalid_model("{}: has {} values but {} needs {}", what, have, t.describe(), n);
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
