#include "server/store/redis/redis_rate_limiter.hpp"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

namespace stargate::server {
namespace {

// KEYS[1] the tenant's bucket; ARGV: per minute, burst, tokens wanted. Takes as many of the
// wanted tokens as the bucket holds whole. Returns {tokens taken, tokens left * 1000}.
// The bucket expires once it would be full again, so idle tenants cost no memory.
constexpr const char* kTakeTokens = R"lua(
local per_second = tonumber(ARGV[1]) / 60
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
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
local taken = math.min(wanted, math.floor(tokens))
if taken < 0 then taken = 0 end
tokens = tokens - taken
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / per_second * 1000) + 1000)
return {taken, math.floor(tokens * 1000)}
)lua";

}  // namespace

RedisRateLimiter::RedisRateLimiter(redis::Client& redis, RateLimit fallback,
                                   std::map<std::string, RateLimit> per_tenant)
    : redis_(redis), limits_(fallback, per_tenant), local_(fallback, std::move(per_tenant)) {}

void RedisRateLimiter::set_limits(RateLimit fallback, std::map<std::string, RateLimit> per_tenant) {
  limits_.set(fallback, per_tenant);
  local_.set_limits(fallback, std::move(per_tenant));
  std::lock_guard lock(leases_mutex_);
  leases_.clear();  // sized for the old limits; what they held is dropped
}

std::int64_t RedisRateLimiter::largest_lease(const RateLimit& limit) {
  const double in_lease =
      limit.per_minute / 60.0 * std::chrono::duration<double>(kLeaseFor).count();
  const double largest = std::min(in_lease, limit.burst / 16.0);
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(largest)));
}

RateDecision RedisRateLimiter::decide(const RateLimit& limit, bool allowed, double tokens) const {
  const double per_second = limit.per_minute / 60.0;
  RateDecision decision;
  decision.allowed = allowed;
  decision.limit = static_cast<std::int64_t>(limit.per_minute);
  decision.remaining = static_cast<std::int64_t>(std::floor(tokens));
  decision.reset_seconds =
      static_cast<std::int64_t>(std::ceil(std::max(0.0, limit.burst - tokens) / per_second));
  if (!allowed) {
    decision.retry_after_seconds =
        static_cast<std::int64_t>(std::ceil((1.0 - tokens) / per_second));
  }
  return decision;
}

RateDecision RedisRateLimiter::take(const std::string& tenant, TimePoint now) {
  const RateLimit limit = limits_.of(tenant);
  std::int64_t wanted = 1;
  {
    std::lock_guard lock(leases_mutex_);
    Lease& lease = leases_[tenant];
    if (lease.left > 0 && now < lease.until) {
      --lease.left;
      // What this gateway still holds is the tenant's as much as what the bucket holds.
      return decide(limit, true, lease.shared_left + static_cast<double>(lease.left));
    }
    if (lease.left > 0) {
      lease.size = std::max<std::int64_t>(1, lease.size / 2);  // more than it needed
    } else if (now < lease.until) {
      lease.size *= 2;  // spent within its time: the tenant is busy here
    }
    lease.size = std::min(lease.size, largest_lease(limit));
    lease.left = 0;
    wanted = lease.size;
  }
  auto reply = redis_.eval(
      kTakeTokens, {redis_.key("ratelimit:" + tenant)},
      {std::to_string(limit.per_minute), std::to_string(limit.burst), std::to_string(wanted)});
  if (!reply || reply->elements.size() != 2) {
    if (shared_.exchange(false)) {
      spdlog::warn("rate limit: {}; each gateway limits on its own until Redis is back",
                   reply ? "unexpected answer from Redis" : reply.error());
    }
    return local_.take(tenant, now);
  }
  if (!shared_.exchange(true)) spdlog::info("rate limit: shared through Redis again");
  const std::int64_t taken = std::max<std::int64_t>(0, reply->elements[0].integer);
  const double tokens = static_cast<double>(reply->elements[1].integer) / 1000.0;
  if (taken == 0) return decide(limit, false, tokens);
  std::lock_guard lock(leases_mutex_);
  Lease& lease = leases_[tenant];
  lease.left += taken - 1;  // one is this request's
  lease.until = now + kLeaseFor;
  lease.shared_left = tokens;
  return decide(limit, true, tokens + static_cast<double>(lease.left));
}

}  // namespace stargate::server
