// Text from a model or engine file (node, value and op names, string attributes) made safe to print: a
// corrupted name must not put raw bytes or escape sequences into a user's terminal or a UTF-8 log.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace kiln {

// Longest name printed whole; longer ones are cut with a "…(N bytes)" marker.
inline constexpr size_t kMaxPrintedName = 200;
// A run of non-blank bytes longer than this in a message is a name no site cut (nothing kiln writes itself is
// that long): printable_message cuts it to kMaxPrintedName, so one huge name cannot fill a terminal.
inline constexpr size_t kMaxMessageToken = 2 * kMaxPrintedName;
// Longest message a Status keeps (a list of every unknown op stays far below it).
inline constexpr size_t kMaxMessageBytes = 64 * 1024;

// Valid UTF-8 is kept; invalid bytes and control characters become \xNN. Past max_bytes of input the rest is
// replaced by "…(N bytes)", N being the whole input's length.
std::string printable(std::string_view s, size_t max_bytes = kMaxPrintedName);
// The same escaping for a whole message, which may span lines: '\n' and '\t' are kept, and each run of non-blank
// bytes longer than kMaxMessageToken is cut as printable() cuts a name.
std::string printable_message(std::string_view s, size_t max_bytes = kMaxMessageBytes);

}  // namespace kiln
