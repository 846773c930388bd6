// 64-bit content hashes of byte strings: engine file checksums and finding equal weights (an engine bundle
// stores each distinct weight once).
#pragma once
#include <cstdint>
#include <string_view>

namespace kiln {

uint64_t fnv1a64(std::string_view bytes);    // byte-wise FNV-1a 64
uint64_t fnv1a64x4(std::string_view bytes);  // four lanes of 8-byte words: memory speed

}  // namespace kiln
