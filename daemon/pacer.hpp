// Pacing from the gateway's rate-limit headers. Every answer says how many requests the
// tenant's bucket holds (X-RateLimit-Remaining), how fast it refills (X-RateLimit-Limit per
// minute) and when it is full again (X-RateLimit-Reset). The pacer keeps an estimate of the
// bucket between answers and, once it runs low, spaces requests at the refill rate, so that
// a tenant near its limit slows down before the gateway refuses it. No clocks of its own:
// callers pass the time, so tests are instant. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include "shared/duration.hpp"

namespace stargate::daemon {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;

  // Requests kept back for others of the tenant (a person's CLI, another daemon).
  static constexpr double kReserve = 2;

  // What an answer said; answers without the headers are ignored.
  void observe(std::int64_t limit_per_minute, std::int64_t remaining, Clock::time_point now);
  // How long to wait before sending one request at `now`; counts that request as sent when
  // the wait is zero (call again after waiting).
  Duration reserve(Clock::time_point now);

 private:
  std::mutex mutex_;
  double per_second_ = 0;  // 0: nothing known yet, send freely
  double tokens_ = 0;      // the bucket as last estimated
  Clock::time_point at_{};
};

// Reads X-RateLimit-Limit / -Remaining values; std::nullopt unless both are plain integers.
std::optional<std::pair<std::int64_t, std::int64_t>> parse_rate_headers(std::string_view limit,
                                                                        std::string_view remaining);

}  // namespace stargate::daemon
