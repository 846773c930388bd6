#include "util/content_hash.h"

#include <cstring>

namespace kiln {

namespace {
constexpr uint64_t kFnvBasis = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;
}  // namespace

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = kFnvBasis;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

// One multiply per byte in a single dependent chain made the byte-wise checksum a quarter of an engine's load
// time (250 ms for 170 MB). Four independent lanes of 8-byte words keep its property that any one corrupted
// word changes the result (each step is a bijection of the lane), at memory speed. Words are read
// little-endian, as the rest of the format.
uint64_t fnv1a64x4(std::string_view bytes) {
  uint64_t lane[4] = {kFnvBasis, kFnvBasis ^ 1, kFnvBasis ^ 2, kFnvBasis ^ 3};
  const char* p = bytes.data();
  const size_t n = bytes.size();
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      lane[l] = (lane[l] ^ w) * kFnvPrime;
    }
  uint64_t h = fnv1a64(bytes.substr(i)) ^ n;
  for (uint64_t v : lane) h = (h ^ v) * kFnvPrime;
  // Fold the high bits down (a multiply only carries upwards), as murmur's finalizer does.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

}  // namespace kiln
