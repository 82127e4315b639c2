// Tests of server/gateway/rate_limiter.cpp: token bucket arithmetic on a hand-driven clock.
#include "server/gateway/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace stargate::server {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, BurstThenSteadyRate) {
  TokenBucket bucket;
  const RateLimit limit{60, 3};  // one a second, three at once
  TimePoint now = *parse_timestamp("2026-01-14T12:00:00Z");
  for (int i = 0; i < 3; ++i) {
    const auto d = take_token(bucket, limit, now);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.limit, 60);
  }
  auto refused = take_token(bucket, limit, now);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 1);
  EXPECT_EQ(refused.reset_seconds, 3);
  now += 1s;
  EXPECT_TRUE(take_token(bucket, limit, now).allowed);
  EXPECT_FALSE(take_token(bucket, limit, now).allowed);
  now += 1h;  // refills only up to the burst
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(take_token(bucket, limit, now).allowed);
  EXPECT_FALSE(take_token(bucket, limit, now).allowed);
}

TEST(RateLimiter, ClockGoingBackDoesNotMintTokens) {
  TokenBucket bucket;
  const RateLimit limit{60, 1};
  TimePoint now = *parse_timestamp("2026-01-14T12:00:00Z");
  EXPECT_TRUE(take_token(bucket, limit, now).allowed);
  EXPECT_FALSE(take_token(bucket, limit, now - 1h).allowed);
}

TEST(RateLimiter, TenantsHaveTheirOwnBuckets) {
  TokenBucketLimiter limiter({60, 1}, {{"big", {600, 5}}});
  const auto now = now_utc();
  EXPECT_TRUE(limiter.take("a", now).allowed);
  EXPECT_FALSE(limiter.take("a", now).allowed);
  EXPECT_TRUE(limiter.take("b", now).allowed);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(limiter.take("big", now).allowed);
  EXPECT_EQ(limiter.take("big", now).limit, 600);
}

}  // namespace
}  // namespace stargate::server
