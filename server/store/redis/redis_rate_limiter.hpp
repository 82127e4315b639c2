// Per-tenant rate limits shared by every gateway: the token bucket of rate_limiter.hpp, kept
// in Redis and taken by one atomic script on Redis's clock, so that one tenant through two
// gateways gets one limit, not two. While Redis cannot be reached, each gateway falls back
// to a bucket of its own (a tenant may then make up to the limit once per gateway) and logs
// it once; it uses Redis again as soon as Redis answers.
//
// A busy tenant costs no Redis round trip per request: a gateway takes its tokens from the
// shared bucket a few at a time (a lease) and spends them itself. Every request allowed
// spent a token taken from the shared bucket, so the one limit holds across gateways as
// before. A lease starts at one token and doubles each time it is spent within kLeaseFor,
// up to what the tenant may make in kLeaseFor (and a sixteenth of its burst); tokens not
// spent by then are dropped (never over the limit, at most one lease under it) and the
// next lease is halved. A tenant allowed under 10 requests a second gets one token a
// request, as without leases.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "server/gateway/rate_limiter.hpp"
#include "server/store/redis/redis_client.hpp"

namespace stargate::server {

class RedisRateLimiter final : public RateLimiter {
 public:
  RedisRateLimiter(redis::Client& redis, RateLimit fallback,
                   std::map<std::string, RateLimit> per_tenant);
  RateDecision take(const std::string& tenant, TimePoint now) override;
  void set_limits(RateLimit fallback, std::map<std::string, RateLimit> per_tenant) override;

  // Whether the last decision came from Redis (false: the local fallback).
  bool shared() const { return shared_.load(); }

  static constexpr auto kLeaseFor = std::chrono::milliseconds(100);
  // How many tokens one lease may take for `limit`.
  static std::int64_t largest_lease(const RateLimit& limit);

 private:
  // The tokens of one tenant this gateway took from the shared bucket and has not spent.
  struct Lease {
    std::int64_t left = 0;
    std::int64_t size = 1;   // what the next lease asks for
    TimePoint until{};       // tokens left after this are dropped
    double shared_left = 0;  // in the shared bucket after the last lease
  };
  RateDecision decide(const RateLimit& limit, bool allowed, double tokens) const;

  redis::Client& redis_;
  RateLimits limits_;
  std::mutex leases_mutex_;
  std::map<std::string, Lease> leases_;
  TokenBucketLimiter local_;  // while Redis cannot be reached
  std::atomic<bool> shared_{true};
};

}  // namespace stargate::server
