// Time: the clock interface (so schedules can be tested without sleeping) and RFC 3339
// timestamps as they appear in every JSON body ("2026-01-14T12:48:00Z").
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/expected.hpp"

namespace stargate {

using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override;
};

// The wall clock, at millisecond precision.
TimePoint now_utc();

// UTC, whole seconds: "2026-01-14T12:48:00Z".
std::string format_timestamp(TimePoint time);

// Reads RFC 3339: a 'T' or ' ' between date and time, optional fraction, and 'Z' or an
// offset (+01:00). Fails naming the text when it is anything else.
Expected<TimePoint> parse_timestamp(std::string_view text);

// Milliseconds since the Unix epoch, the form stored in SQLite.
std::int64_t to_unix_ms(TimePoint time);
TimePoint from_unix_ms(std::int64_t ms);

}  // namespace stargate
