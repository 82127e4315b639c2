// Duration parsing and formatting.
#include "shared/duration.hpp"

#include <array>
#include <cstdint>
#include <limits>

namespace stargate {
namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t ms;
};

// Longest suffix first so that "ms" is not read as "m" followed by garbage.
constexpr std::array<Unit, 5> kUnits = {{
    {"ms", 1},
    {"s", 1000},
    {"m", 60'000},
    {"h", 3'600'000},
    {"d", 86'400'000},
}};

constexpr std::int64_t kMaxMs = 100LL * 365 * 86'400'000;  // 100 years

Unexpected<std::string> bad(std::string_view text, std::string_view why) {
  return fail("invalid duration '" + std::string(text) + "': " + std::string(why) +
              " (examples: 90s, 15m, 2h, 500ms, 1h30m)");
}

}  // namespace

Expected<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return bad(text, "empty");
  if (text.size() > 64) return fail("invalid duration: longer than 64 characters");
  std::int64_t total = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] < '0' || text[pos] > '9') return bad(text, "expected a number");
    std::int64_t number = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      number = number * 10 + (text[pos] - '0');
      if (number > kMaxMs) return bad(text, "too large");
      ++pos;
    }
    const Unit* unit = nullptr;
    for (const auto& candidate : kUnits) {
      if (text.substr(pos, candidate.suffix.size()) == candidate.suffix) {
        unit = &candidate;
        break;
      }
    }
    if (unit == nullptr) {
      return bad(text, pos == text.size() ? "missing unit (ms, s, m, h or d)" : "unknown unit");
    }
    pos += unit->suffix.size();
    if (number > (kMaxMs - total) / unit->ms) return bad(text, "too large");
    total += number * unit->ms;
  }
  return Duration(total);
}

std::string format_duration(Duration duration) {
  std::int64_t ms = duration.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (auto it = kUnits.rbegin(); it != kUnits.rend(); ++it) {
    if (ms >= it->ms) {
      out += std::to_string(ms / it->ms) + std::string(it->suffix);
      ms %= it->ms;
    }
  }
  return out;
}

}  // namespace stargate
