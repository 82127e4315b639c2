// Tests of shared/text.cpp: UTF-8 validation and escaping of outside bytes.
#include "shared/text.hpp"

#include <gtest/gtest.h>

namespace stargate {
namespace {

TEST(Text, ValidatesUtf8AsRfc3629Does) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation byte
}

TEST(Text, ReplacesInvalidBytesAndCutsAtACharacterBoundary) {
  EXPECT_EQ(to_valid_utf8("a\xff"
                          "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(to_valid_utf8("caf\xc3\xa9"), "caf\xc3\xa9");
  // Cutting inside "é" drops it whole instead of leaving half a character.
  EXPECT_EQ(to_valid_utf8("caf\xc3\xa9", 4), "caf");
  EXPECT_TRUE(is_valid_utf8(to_valid_utf8(std::string("\xe2\x82", 2) + "\xf0\x9f")));
}

TEST(Text, EscapesControlCharactersAndInvalidBytes) {
  EXPECT_EQ(escape_text("GET /a\n2026-12-01 ERROR forged"), "GET /a\\n2026-12-01 ERROR forged");
  EXPECT_EQ(escape_text("\r\t\x1b[31m"), "\\r\\t\\x1b[31m");
  EXPECT_EQ(escape_text(std::string("nul\0byte", 8)), "nul\\x00byte");
  EXPECT_EQ(escape_text("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(escape_text("\xc2\x9b"
                        "1m"),
            "\\u009b1m");                                // C1 control (CSI)
  EXPECT_EQ(escape_text("caf\xc3\xa9"), "caf\xc3\xa9");  // valid text is kept as it is
  EXPECT_EQ(escape_text("abcdef", 3), "abc...");
}

TEST(Text, ShortenMessage) {
  EXPECT_EQ(shorten_message("fine\n\n"), "fine");
  EXPECT_EQ(shorten_message(std::string(600, 'x'), 10), "xxxxxxx...");
  // A handler's stderr is any bytes: the message is valid UTF-8, cut between characters.
  EXPECT_EQ(shorten_message("bad \xff\xfe"), "bad \xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(shorten_message("\xc3\xa9\xc3\xa9\xc3\xa9", 5), "\xc3\xa9...");
  // Found by fuzzing: replacing bad bytes made the message longer than its limit.
  EXPECT_LE(shorten_message(std::string(10, '\xff'), 12).size(), 12u);
}

}  // namespace
}  // namespace stargate
