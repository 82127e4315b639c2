// Durations as people write them in config files and on the command line: "90s", "15m",
// "2h", "500ms", "1d", or combined as "1h30m".
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "shared/expected.hpp"

namespace stargate {

using Duration = std::chrono::milliseconds;

// Fails with a message that quotes the input and says what is expected; rejects empty text,
// a number without a unit, unknown units, signs, and values beyond 100 years.
Expected<Duration> parse_duration(std::string_view text);

// The shortest exact spelling parse_duration() reads back: "1h30m", "250ms", "0s".
std::string format_duration(Duration duration);

}  // namespace stargate
