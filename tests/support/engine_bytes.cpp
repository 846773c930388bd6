#include "support/engine_bytes.h"

#include <cstring>

namespace kiln::testing {

namespace {
constexpr size_t kHeader = 24, kTrailer = 8;  // docs/engine_format.md
}

std::string with_manifest(const std::string& engine_bytes, const std::function<void(nlohmann::json&)>& edit,
                          uint64_t (*checksum)(std::string_view)) {
  uint64_t mlen = 0;
  std::memcpy(&mlen, engine_bytes.data() + 16, 8);
  nlohmann::json m = nlohmann::json::parse(engine_bytes.substr(kHeader, mlen));
  edit(m);
  const std::string ms = m.dump();
  std::string out = engine_bytes.substr(0, 16);
  const uint64_t n = ms.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += ms;
  out += engine_bytes.substr(kHeader + mlen, engine_bytes.size() - kHeader - mlen - kTrailer);
  const uint64_t sum = checksum(out);
  out.append(reinterpret_cast<const char*>(&sum), 8);
  return out;
}

void resign(std::string& engine_bytes) {
  const uint64_t sum =
      engine_file::fnv1a64x4(std::string_view(engine_bytes).substr(0, engine_bytes.size() - kTrailer));
  std::memcpy(engine_bytes.data() + engine_bytes.size() - kTrailer, &sum, 8);
}

}  // namespace kiln::testing
