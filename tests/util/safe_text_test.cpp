// Text from a model is escaped and cut before it reaches a message.
#include "util/safe_text.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kiln/status.h"

namespace kiln {
namespace {

TEST(SafeText, EscapesInvalidUtf8AndControlBytes) {
  EXPECT_EQ(printable("f\xe3_b"), "f\\xe3_b");
  EXPECT_EQ(printable("a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");          // overlong '/'
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a UTF-16 surrogate
  EXPECT_EQ(printable("\xf0\x9f\x98"), "\\xf0\\x9f\\x98");  // truncated 4-byte sequence
}

TEST(SafeText, KeepsValidUtf8) {
  EXPECT_EQ(printable("conv1/weight"), "conv1/weight");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80");
}

TEST(SafeText, CutsLongNamesWithTheirLength) {
  const std::string name(10000, 'n');
  const std::string out = printable(name);
  EXPECT_EQ(out, std::string(kMaxPrintedName, 'n') + "\xe2\x80\xa6(10000 bytes)");
  EXPECT_EQ(printable(std::string(kMaxPrintedName, 'n')), std::string(kMaxPrintedName, 'n'));
  // A multi-byte character that straddles the limit is dropped whole, never cut in half.
  const std::string straddle = std::string(kMaxPrintedName - 1, 'a') + "\xc3\xa9";
  EXPECT_EQ(printable(straddle), std::string(kMaxPrintedName - 1, 'a') + "\xe2\x80\xa6(201 bytes)");
}

TEST(SafeText, StatusMessagesAreAlwaysPrintable) {
  const Status s(StatusCode::kInvalidModel, "input 'f\xe3_b' is bad\nsecond line\x07");
  EXPECT_EQ(s.message(), "input 'f\\xe3_b' is bad\nsecond line\\x07");
  EXPECT_EQ(Status(StatusCode::kInternal, s.message()).message(), s.message());  // escaping is idempotent
  std::string words;  // short words, as a long list of op names would be
  while (words.size() < kMaxMessageBytes + 10) words += "word ";
  const Status huge(StatusCode::kInternal, words);
  EXPECT_LT(huge.message().size(), kMaxMessageBytes + 40);
  EXPECT_NE(huge.message().find(fmt::format("({} bytes)", words.size())), std::string::npos);
}

// A site that printed a model's name without printable() still cannot put a megabyte name into a message.
TEST(SafeText, StatusCutsAnyOverlongName) {
  const std::string name(1 << 20, 'n');
  const Status s(StatusCode::kInvalidModel, "node '" + name + "' (Add): bad\nnext line keeps  its spacing");
  EXPECT_EQ(s.message(), "node '" + std::string(kMaxPrintedName - 1, 'n') + "\xe2\x80\xa6(1048578 bytes) (Add): bad\n"
                         "next line keeps  its spacing");
  EXPECT_EQ(Status(StatusCode::kInternal, s.message()).message(), s.message());
  // Tokens up to kMaxMessageToken stay whole.
  const std::string fits(kMaxMessageToken, 'f');
  EXPECT_EQ(Status(StatusCode::kInternal, "x " + fits).message(), "x " + fits);
}

}  // namespace
}  // namespace kiln
