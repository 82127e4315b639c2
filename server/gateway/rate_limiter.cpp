// Token bucket arithmetic.
#include "server/gateway/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace stargate::server {

RateDecision take_token(TokenBucket& bucket, const RateLimit& limit, TimePoint now) {
  const double per_second = limit.per_minute / 60.0;
  if (bucket.tokens < 0) {
    bucket.tokens = limit.burst;
  } else {
    const double elapsed =
        std::max(0.0, std::chrono::duration<double>(now - bucket.updated).count());
    bucket.tokens = std::min(limit.burst, bucket.tokens + elapsed * per_second);
  }
  bucket.updated = now;
  RateDecision decision;
  decision.limit = static_cast<std::int64_t>(limit.per_minute);
  decision.allowed = bucket.tokens >= 1.0;
  if (decision.allowed) {
    bucket.tokens -= 1.0;
  } else {
    decision.retry_after_seconds =
        static_cast<std::int64_t>(std::ceil((1.0 - bucket.tokens) / per_second));
  }
  decision.remaining = static_cast<std::int64_t>(std::floor(bucket.tokens));
  decision.reset_seconds =
      static_cast<std::int64_t>(std::ceil((limit.burst - bucket.tokens) / per_second));
  return decision;
}

RateLimit RateLimits::of(const std::string& tenant) const {
  std::lock_guard lock(mutex_);
  const auto own = per_tenant_.find(tenant);
  return own == per_tenant_.end() ? fallback_ : own->second;
}

void RateLimits::set(RateLimit fallback, std::map<std::string, RateLimit> per_tenant) {
  std::lock_guard lock(mutex_);
  fallback_ = fallback;
  per_tenant_ = std::move(per_tenant);
}

RateDecision TokenBucketLimiter::take(const std::string& tenant, TimePoint now) {
  const RateLimit limit = limits_.of(tenant);
  std::lock_guard lock(mutex_);
  return take_token(buckets_[tenant], limit, now);
}

}  // namespace stargate::server
