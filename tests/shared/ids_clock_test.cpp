// Tests of shared/ids.cpp and shared/clock.cpp.
#include <gtest/gtest.h>

#include <set>

#include "shared/clock.hpp"
#include "shared/ids.hpp"

namespace stargate {
namespace {

TEST(Ids, UuidsAreVersion4AndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = new_uuid();
    ASSERT_TRUE(is_uuid(id)) << id;
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(seen.insert(id).second);
  }
  EXPECT_FALSE(is_uuid("8f3c2a4e-7b91-4d8f-9e6a-2c4f8b1d7e5"));
  EXPECT_FALSE(is_uuid("8f3c2a4e07b91-4d8f-9e6a-2c4f8b1d7e53"));
  EXPECT_FALSE(is_uuid("zf3c2a4e-7b91-4d8f-9e6a-2c4f8b1d7e53"));
}

TEST(Ids, ProcessIds) {
  const auto day = *parse_timestamp("2026-01-14T23:59:59Z");
  EXPECT_EQ(format_process_id(day, 1), "PROC-20260114-00001");
  EXPECT_EQ(format_process_id(day, 123456), "PROC-20260114-123456");
  EXPECT_TRUE(is_process_id("PROC-20260114-00001"));
  EXPECT_TRUE(is_process_id("PROC-20260114-123456"));
  EXPECT_FALSE(is_process_id("PROC-20260114-0001"));
  EXPECT_FALSE(is_process_id("PROC-2026011-00001"));
  EXPECT_FALSE(is_process_id("proc-20260114-00001"));
  EXPECT_FALSE(is_process_id("PROC-20260114-0000x"));
  EXPECT_FALSE(is_process_id("PROC-20260114-00001/../x"));
}

TEST(Ids, SafeIds) {
  EXPECT_TRUE(is_safe_id("order-42_a.b:c"));
  EXPECT_FALSE(is_safe_id(""));
  EXPECT_FALSE(is_safe_id(std::string(129, 'a')));
  for (const char* bad : {"a b", "a/b", "a?b", "a%20", "é", "a\nb"})
    EXPECT_FALSE(is_safe_id(bad));
}

TEST(Clock, TimestampsRoundTrip) {
  const auto t = *parse_timestamp("2026-01-14T12:48:00Z");
  EXPECT_EQ(format_timestamp(t), "2026-01-14T12:48:00Z");
  EXPECT_EQ(to_unix_ms(t), 1768394880000);
  EXPECT_EQ(from_unix_ms(to_unix_ms(t)), t);
  EXPECT_EQ(*parse_timestamp("2026-01-14T13:48:00+01:00"), t);
  EXPECT_EQ(*parse_timestamp("2026-01-14 12:48:00.250Z"), t + std::chrono::milliseconds(250));
  EXPECT_EQ(format_timestamp(t + std::chrono::milliseconds(999)), "2026-01-14T12:48:00Z");
}

TEST(Clock, RejectsMalformedTimestamps) {
  for (const char* bad :
       {"", "2026-01-14", "2026-01-14T12:48:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
        "2026-01-14T25:00:00Z", "2026-01-14T12:48:00Zjunk", "2026-01-14T12:48:00+0100",
        "2026-01-14T12:48:00.Z", "yesterday"}) {
    EXPECT_FALSE(parse_timestamp(bad)) << bad;
  }
}

TEST(Clock, FarTimestampsFormatWithoutOverflow) {
  // Found by fuzzing the daemon's decoding of gateway answers: formatting went through
  // nanoseconds, which overflow after 2262.
  auto far = parse_timestamp("9999-12-31T23:59:59.999Z");
  ASSERT_TRUE(far);
  EXPECT_EQ(format_timestamp(*far), "9999-12-31T23:59:59Z");
  EXPECT_EQ(format_timestamp(*parse_timestamp("3649-02-28T10:00:00+02:00")),
            "3649-02-28T08:00:00Z");
}

}  // namespace
}  // namespace stargate
