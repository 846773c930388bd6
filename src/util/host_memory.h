// The user's cap on one host allocation: KILN_HOST_MEMORY_LIMIT, in bytes or with a K/M/G/T suffix (powers
// of 1024). A shape that asks for more is an error naming the tensor, rather than swap or the OOM killer.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

#include "kiln/status.h"

namespace kiln {

inline constexpr const char* kHostMemoryLimitEnv = "KILN_HOST_MEMORY_LIMIT";

// "4096", "512M", "8G" -> bytes; nullopt for anything else (or a value past int64).
std::optional<int64_t> parse_byte_size(std::string_view text);
// The limit in force: nullopt when the variable is unset or empty; an error when it is set but not a size.
Result<std::optional<int64_t>> host_memory_limit();

}  // namespace kiln
