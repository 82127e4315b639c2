// Tests of shared/duration.cpp.
#include "shared/duration.hpp"

#include <gtest/gtest.h>

namespace stargate {
namespace {

using namespace std::chrono_literals;

TEST(Duration, ReadsEveryUnit) {
  EXPECT_EQ(*parse_duration("90s"), 90s);
  EXPECT_EQ(*parse_duration("15m"), 15min);
  EXPECT_EQ(*parse_duration("2h"), 2h);
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("1d"), 24h);
  EXPECT_EQ(*parse_duration("0s"), 0s);
}

TEST(Duration, ReadsCombinations) {
  EXPECT_EQ(*parse_duration("1h30m"), 90min);
  EXPECT_EQ(*parse_duration("1m30s500ms"), 90500ms);
}

TEST(Duration, RejectsGarbageWithAClearMessage) {
  for (const char* bad : {"", "s", "10", "10x", "-5s", "+5s", "5 s", " 5s", "5s ", "1.5h", "abc",
                          "5sec", "ms", "10m5", "１s"}) {
    auto parsed = parse_duration(bad);
    ASSERT_FALSE(parsed) << "accepted '" << bad << "'";
    EXPECT_NE(parsed.error().find("invalid duration"), std::string::npos) << parsed.error();
  }
  EXPECT_NE(parse_duration("10").error().find("missing unit"), std::string::npos);
}

TEST(Duration, RejectsOverflowAndHugeInput) {
  EXPECT_FALSE(parse_duration("99999999999999999999999s"));
  EXPECT_FALSE(parse_duration("36501d"));
  EXPECT_FALSE(parse_duration(std::string(10000, '9') + "s"));
  EXPECT_TRUE(parse_duration("36500d"));
}

TEST(Duration, FormatsWhatItReads) {
  for (const char* text : {"0s", "90ms", "1m30s", "2h", "1d1h1m1s1ms"}) {
    EXPECT_EQ(format_duration(*parse_duration(text)), text);
  }
  EXPECT_EQ(format_duration(90s), "1m30s");
}

}  // namespace
}  // namespace stargate
