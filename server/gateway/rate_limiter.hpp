// Per-tenant rate limiting with token buckets: each tenant may make `per_minute` requests a
// minute on average and `burst` at once. The limiter is an interface so that gateways sharing
// Redis can share counters; TokenBucketLimiter keeps them in this process.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "shared/clock.hpp"

namespace stargate::server {

struct RateLimit {
  double per_minute = 600;
  double burst = 100;
  bool operator==(const RateLimit&) const = default;
};

// The numbers behind X-RateLimit-Limit, -Remaining, -Reset and Retry-After.
struct RateDecision {
  bool allowed = true;
  std::int64_t limit = 0;                // requests per minute
  std::int64_t remaining = 0;            // whole requests left in the bucket now
  std::int64_t reset_seconds = 0;        // until the bucket is full again
  std::int64_t retry_after_seconds = 0;  // when refused: until one request is allowed
};

struct TokenBucket {
  double tokens = -1;  // negative: not used yet (starts full)
  TimePoint updated{};
};

// Refills `bucket` for the time since its last use, then takes one token if there is one.
RateDecision take_token(TokenBucket& bucket, const RateLimit& limit, TimePoint now);

// Each tenant's limit: its own, or the default. Changed while requests are taken (a reload).
class RateLimits {
 public:
  RateLimits(RateLimit fallback, std::map<std::string, RateLimit> per_tenant)
      : fallback_(fallback), per_tenant_(std::move(per_tenant)) {}
  RateLimit of(const std::string& tenant) const;
  void set(RateLimit fallback, std::map<std::string, RateLimit> per_tenant);

 private:
  mutable std::mutex mutex_;
  RateLimit fallback_;
  std::map<std::string, RateLimit> per_tenant_;
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  virtual RateDecision take(const std::string& tenant, TimePoint now) = 0;
  // New limits from now on; each tenant's bucket keeps what it holds (up to the new burst).
  virtual void set_limits(RateLimit fallback, std::map<std::string, RateLimit> per_tenant) = 0;
};

class TokenBucketLimiter final : public RateLimiter {
 public:
  TokenBucketLimiter(RateLimit fallback, std::map<std::string, RateLimit> per_tenant)
      : limits_(fallback, std::move(per_tenant)) {}
  RateDecision take(const std::string& tenant, TimePoint now) override;
  void set_limits(RateLimit fallback, std::map<std::string, RateLimit> per_tenant) override {
    limits_.set(fallback, std::move(per_tenant));
  }

 private:
  RateLimits limits_;
  std::mutex mutex_;
  std::map<std::string, TokenBucket> buckets_;
};

}  // namespace stargate::server
