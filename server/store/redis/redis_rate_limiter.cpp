#include "server/store/redis/redis_rate_limiter.hpp"

#include <cmath>

#include <spdlog/spdlog.h>

namespace stargate::server {
namespace {

// KEYS[1] the tenant's bucket; ARGV: per minute, burst. Returns {allowed, tokens left * 1000}.
// The bucket expires once it would be full again, so idle tenants cost no memory.
constexpr const char* kTakeToken = R"lua(
local per_second = tonumber(ARGV[1]) / 60
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(bucket[1])
local updated = tonumber(bucket[2])
if tokens == nil or updated == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - updated) / 1000 * per_second)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / per_second * 1000) + 1000)
return {allowed, math.floor(tokens * 1000)}
)lua";

}  // namespace

RedisRateLimiter::RedisRateLimiter(redis::Client& redis, RateLimit fallback,
                                   std::map<std::string, RateLimit> per_tenant)
    : redis_(redis), limits_(fallback, per_tenant), local_(fallback, std::move(per_tenant)) {}

void RedisRateLimiter::set_limits(RateLimit fallback, std::map<std::string, RateLimit> per_tenant) {
  limits_.set(fallback, per_tenant);
  local_.set_limits(fallback, std::move(per_tenant));
}

RateDecision RedisRateLimiter::take(const std::string& tenant, TimePoint now) {
  const RateLimit limit = limits_.of(tenant);
  auto reply = redis_.eval(kTakeToken, {"stargate:ratelimit:" + tenant},
                           {std::to_string(limit.per_minute), std::to_string(limit.burst)});
  if (!reply || reply->elements.size() != 2) {
    if (shared_.exchange(false)) {
      spdlog::warn("rate limit: {}; each gateway limits on its own until Redis is back",
                   reply ? "unexpected answer from Redis" : reply.error());
    }
    return local_.take(tenant, now);
  }
  if (!shared_.exchange(true)) spdlog::info("rate limit: shared through Redis again");
  const bool allowed = reply->elements[0].integer == 1;
  const double tokens = static_cast<double>(reply->elements[1].integer) / 1000.0;
  const double per_second = limit.per_minute / 60.0;
  RateDecision decision;
  decision.allowed = allowed;
  decision.limit = static_cast<std::int64_t>(limit.per_minute);
  decision.remaining = static_cast<std::int64_t>(std::floor(tokens));
  decision.reset_seconds =
      static_cast<std::int64_t>(std::ceil((limit.burst - tokens) / per_second));
  if (!allowed) {
    decision.retry_after_seconds =
        static_cast<std::int64_t>(std::ceil((1.0 - tokens) / per_second));
  }
  return decision;
}

}  // namespace stargate::server
