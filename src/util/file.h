#pragma once
#include <string>
#include <string_view>

#include "kiln/status.h"

namespace kiln {
// Whole file; errors say whether it is missing, a directory or unreadable.
Result<std::string> read_file(const std::string& path);
// Writes PATH.tmp then renames it over PATH, so readers never see a partial file.
Status write_file_atomic(const std::string& path, std::string_view bytes);
}  // namespace kiln
