#include "util/safe_text.h"

#include <fmt/format.h>

namespace kiln {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one (overlong forms, surrogates
// and code points past U+10FFFF included, as a strict decoder would refuse them).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return len;
}

std::string escape(std::string_view s, size_t max_bytes, bool keep_line_breaks) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes) + 16);
  size_t i = 0;
  while (i < s.size() && i < max_bytes) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = utf8_sequence_length(s, i);
    const bool control = c < 0x20 || c == 0x7F;
    if (len == 0 || (control && !(keep_line_breaks && (c == '\n' || c == '\t')))) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else if (i + len > max_bytes) {
      break;  // never cut a character in half
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  if (i < s.size()) out += fmt::format("\u2026({} bytes)", s.size());
  return out;
}

}  // namespace

std::string printable(std::string_view s, size_t max_bytes) { return escape(s, max_bytes, false); }

std::string printable_message(std::string_view s, size_t max_bytes) {
  const auto blank = [](char c) { return c == ' ' || c == '\n' || c == '\t'; };
  std::string cut;  // s with every over-long token cut, built only once one is found; escaped as a whole below
  size_t copied = 0;  // s[0, copied) is in cut
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    while (j < s.size() && !blank(s[j])) ++j;
    if (j - i > kMaxMessageToken) {
      cut.append(s.substr(copied, i - copied));
      cut += printable(s.substr(i, j - i));  // already escaped; escaping again leaves it as it is
      copied = j;
    }
    i = j + 1;
  }
  if (copied == 0) return escape(s, max_bytes, true);
  cut.append(s.substr(copied));
  return escape(cut, max_bytes, true);
}

}  // namespace kiln
