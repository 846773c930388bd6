// Edits a serialized engine file's manifest and re-signs the file, so a test or the fuzzer gets past the
// checksum and reaches the loader's own checks.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/engine_file.h"

namespace kiln::testing {

// The file with its manifest passed through `edit`, the manifest length updated and the trailer recomputed
// with `checksum` (the current lane checksum unless a test writes a legacy file).
std::string with_manifest(const std::string& engine_bytes, const std::function<void(nlohmann::json&)>& edit,
                          uint64_t (*checksum)(std::string_view) = engine_file::fnv1a64x4);

// The trailer recomputed after an in-place edit of the bytes before it.
void resign(std::string& engine_bytes);

}  // namespace kiln::testing
