// Pacer: a token-bucket estimate between the gateway's answers.
#include "daemon/pacer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace stargate::daemon {

void Pacer::observe(std::int64_t limit_per_minute, std::int64_t remaining, Clock::time_point now) {
  if (limit_per_minute <= 0 || remaining < 0) return;
  std::lock_guard lock(mutex_);
  per_second_ = static_cast<double>(limit_per_minute) / 60.0;
  tokens_ = static_cast<double>(remaining);
  at_ = now;
}

Duration Pacer::reserve(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (per_second_ <= 0) return Duration::zero();
  const double elapsed = std::max(0.0, std::chrono::duration<double>(now - at_).count());
  // The bucket's size is not sent; refilling past what the gateway last said by more than
  // a minute's worth would only matter when there is plenty, where pacing does not act.
  const double tokens = tokens_ + elapsed * per_second_;
  if (tokens >= 1 + kReserve) {
    tokens_ = tokens - 1;
    at_ = now;
    return Duration::zero();
  }
  const double wait = (1 + kReserve - tokens) / per_second_;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(wait)) +
         std::chrono::milliseconds(1);
}

std::optional<std::pair<std::int64_t, std::int64_t>> parse_rate_headers(
    std::string_view limit, std::string_view remaining) {
  const auto number = [](std::string_view text) -> std::optional<std::int64_t> {
    if (text.empty() || text.size() > 12 ||
        text.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    return std::stoll(std::string(text));
  };
  auto l = number(limit);
  auto r = number(remaining);
  if (!l || !r) return std::nullopt;
  return std::pair{*l, *r};
}

}  // namespace stargate::daemon
