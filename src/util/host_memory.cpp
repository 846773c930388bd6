#include "util/host_memory.h"

#include <cstdlib>
#include <string>

#include "util/checked_math.h"

namespace kiln {

std::optional<int64_t> parse_byte_size(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t scale = 1;
  switch (text.back()) {
    case 'K': case 'k': scale = int64_t{1} << 10; break;
    case 'M': case 'm': scale = int64_t{1} << 20; break;
    case 'G': case 'g': scale = int64_t{1} << 30; break;
    case 'T': case 't': scale = int64_t{1} << 40; break;
    default: break;
  }
  if (scale != 1) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    auto next = checked_mul<int64_t>(value, 10);
    if (next) next = checked_add<int64_t>(*next, c - '0');
    if (!next) return std::nullopt;
    value = *next;
  }
  return checked_mul(value, scale);
}

Result<std::optional<int64_t>> host_memory_limit() {
  const char* env = std::getenv(kHostMemoryLimitEnv);
  if (!env || !*env) return std::optional<int64_t>();
  auto bytes = parse_byte_size(env);
  if (!bytes)
    return Status(StatusCode::kInvalidArgument,
                  std::string(kHostMemoryLimitEnv) + "='" + env +
                      "' is not a size: give bytes or a number with K, M, G or T (e.g. 8G), or unset it");
  return std::optional<int64_t>(*bytes);
}

}  // namespace kiln
