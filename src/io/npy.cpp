#include "kiln/tensor_io.h"

#include <cstring>
#include <regex>

#include "onnx/tensor_proto.h"
#include "util/error.h"
#include "util/file.h"

namespace kiln::io {

namespace {

const std::pair<const char*, DType> kDescrs[] = {
    {"f4", DType::kF32}, {"f8", DType::kF64}, {"f2", DType::kF16}, {"i1", DType::kI8},  {"u1", DType::kU8},
    {"i2", DType::kI16}, {"u2", DType::kU16}, {"i4", DType::kI32}, {"u4", DType::kU32}, {"i8", DType::kI64},
    {"u8", DType::kU64}, {"b1", DType::kBool},
};

}  // namespace

Result<Tensor> parse_npy(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0)
    return invalid_argument("{} is not a .npy file (bad magic); save arrays with numpy.save", what);
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else {
    if (bytes.size() < 12) return invalid_argument("{} is truncated", what);
    uint32_t hl;
    std::memcpy(&hl, bytes.data() + 8, 4);
    header_len = hl;
    offset = 12;
  }
  if (offset + header_len > bytes.size()) return invalid_argument("{} is truncated (header)", what);
  const std::string header = bytes.substr(offset, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<>|=])([a-zA-Z]\\d+)'")))
    return unsupported("{}: cannot read dtype from header {}", what, header);
  if (m[1] == ">") return unsupported("{}: big-endian arrays are not supported; use numpy's '<' byte order", what);
  std::optional<DType> dt;
  for (const auto& [d, t] : kDescrs)
    if (m[2] == d) dt = t;
  if (!dt) return unsupported("{}: numpy dtype '{}' is not supported", what, m[2].str());
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    return unsupported("{}: Fortran-ordered arrays are not supported; save np.ascontiguousarray(a)", what);
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    return invalid_argument("{}: cannot read shape from header {}", what, header);
  std::vector<int64_t> dims;
  std::string s = m[1];
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), num); it != std::sregex_iterator(); ++it)
    dims.push_back(std::stoll(it->str()));
  Tensor t(*dt, dims);
  const size_t data_off = offset + header_len;
  if (bytes.size() - data_off != t.nbytes())
    return invalid_argument("{}: holds {} data bytes but {} needs {} (truncated or wrong header)", what,
                            bytes.size() - data_off, t.describe(), t.nbytes());
  if (t.nbytes()) std::memcpy(t.raw(), bytes.data() + data_off, t.nbytes());
  return t;
}

Result<Tensor> load_npy(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  return parse_npy(bytes, "'" + path + "'");
}

std::string to_npy(const Tensor& t) {
  const char* descr = "<f4";
  switch (t.dtype()) {
    case DType::kF32: descr = "<f4"; break;
    case DType::kF64: descr = "<f8"; break;
    case DType::kF16: descr = "<f2"; break;
    case DType::kBF16: descr = "<u2"; break;  // numpy has no bf16: raw bits
    case DType::kI8: descr = "|i1"; break;
    case DType::kU8: descr = "|u1"; break;
    case DType::kI16: descr = "<i2"; break;
    case DType::kU16: descr = "<u2"; break;
    case DType::kI32: descr = "<i4"; break;
    case DType::kU32: descr = "<u4"; break;
    case DType::kI64: descr = "<i8"; break;
    case DType::kU64: descr = "<u8"; break;
    case DType::kBool: descr = "|b1"; break;
    default: break;
  }
  std::string shape;
  for (int64_t d : t.dims()) shape += std::to_string(d) + ",";
  if (t.rank() > 1) shape.pop_back();
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, shape);
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

Status save_npy(const Tensor& t, const std::string& path) { return write_file_atomic(path, to_npy(t)); }

Result<Tensor> load_tensor_file(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  if (bytes.size() >= 6 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0) return parse_npy(bytes, "'" + path + "'");
  if (path.size() > 4 && path.substr(path.size() - 4) == ".npy") return parse_npy(bytes, "'" + path + "'");
  return onnx::load_tensor_pb(path);
}

}  // namespace kiln::io
