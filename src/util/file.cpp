#include "util/file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "util/error.h"

namespace kiln {

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found("file '{}' does not exist", path);
  if (std::filesystem::is_directory(path, ec)) return invalid_argument("'{}' is a directory, not a file", path);
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return make_error(StatusCode::kIoError, "cannot open '{}' for reading", path);
  // One read of the known size: an engine file is hundreds of MB, and reading it a character at a time took
  // most of a second.
  const std::streamoff size = f.tellg();
  if (size < 0) {  // not seekable (a pipe): read to the end
    f.clear();
    std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) return make_error(StatusCode::kIoError, "reading '{}' failed", path);
    return data;
  }
  std::string data(static_cast<size_t>(size), '\0');
  f.seekg(0);
  f.read(data.data(), size);
  if (f.gcount() != size) return make_error(StatusCode::kIoError, "reading '{}' failed", path);
  return data;
}

Status write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return make_error(StatusCode::kIoError, "cannot open '{}' for writing (does the directory exist?)", tmp);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (!f) {
      f.close();
      std::remove(tmp.c_str());
      return make_error(StatusCode::kIoError, "writing '{}' failed (disk full?)", tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return make_error(StatusCode::kIoError, "cannot move '{}' to '{}': {}", tmp, path, ec.message());
  }
  return Status();
}

}  // namespace kiln
