// Per-tenant rate limits shared by every gateway: the token bucket of rate_limiter.hpp, kept
// in Redis and taken by one atomic script on Redis's clock, so that one tenant through two
// gateways gets one limit, not two. While Redis cannot be reached, each gateway falls back
// to a bucket of its own (a tenant may then make up to the limit once per gateway) and logs
// it once; it uses Redis again as soon as Redis answers.
#pragma once

#include <atomic>
#include <map>
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

 private:
  redis::Client& redis_;
  RateLimits limits_;
  TokenBucketLimiter local_;  // while Redis cannot be reached
  std::atomic<bool> shared_{true};
};

}  // namespace stargate::server
