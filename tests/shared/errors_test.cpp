// Tests of shared/errors.cpp: codes, statuses and the §11 error body.
#include "shared/errors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace stargate {
namespace {

TEST(Errors, StatusesMatchTheContract) {
  EXPECT_EQ(http_status(ErrorCode::kInvalidRequest), 400);
  EXPECT_EQ(http_status(ErrorCode::kInvalidToken), 401);
  EXPECT_EQ(http_status(ErrorCode::kInsufficientPermissions), 403);
  EXPECT_EQ(http_status(ErrorCode::kNotFound), 404);
  EXPECT_EQ(http_status(ErrorCode::kNotRetryable), 409);
  EXPECT_EQ(http_status(ErrorCode::kCursorExpired), 410);
  EXPECT_EQ(http_status(ErrorCode::kPayloadTooLarge), 413);
  EXPECT_EQ(http_status(ErrorCode::kUnsupportedMediaType), 415);
  EXPECT_EQ(http_status(ErrorCode::kIdempotencyKeyReused), 422);
  EXPECT_EQ(http_status(ErrorCode::kRateLimitExceeded), 429);
  EXPECT_EQ(http_status(ErrorCode::kInternalError), 500);
  EXPECT_EQ(http_status(ErrorCode::kServiceUnavailable), 503);
  EXPECT_EQ(error_name(ErrorCode::kInsufficientPermissions), "INSUFFICIENT_PERMISSIONS");
  EXPECT_EQ(parse_error_code("RATE_LIMIT_EXCEEDED"), ErrorCode::kRateLimitExceeded);
  EXPECT_FALSE(parse_error_code("rate_limit_exceeded"));
}

TEST(Errors, BodyHasTheSeedFields) {
  const auto body = error_body({ErrorCode::kRateLimitExceeded, "Request rate limit exceeded", 30},
                               "2026-01-14T12:48:00Z", "corr-1");
  EXPECT_EQ(body["error"], "RATE_LIMIT_EXCEEDED");
  EXPECT_EQ(body["message"], "Request rate limit exceeded");
  EXPECT_EQ(body["retryAfter"], 30);
  EXPECT_EQ(body["timestamp"], "2026-01-14T12:48:00Z");
  EXPECT_EQ(body["correlationId"], "corr-1");
  const auto plain = error_body({ErrorCode::kNotFound, "x", std::nullopt}, "t", "");
  EXPECT_FALSE(plain.contains("retryAfter"));
  EXPECT_FALSE(plain.contains("correlationId"));
}

TEST(Errors, ParsesBodiesBackAndRefusesOthers) {
  auto parsed = parse_error_body(
      {{"error", "RATE_LIMIT_EXCEEDED"}, {"message", "slow down"}, {"retryAfter", 7}});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->code, ErrorCode::kRateLimitExceeded);
  EXPECT_EQ(parsed->retry_after_seconds, 7);
  auto unknown = parse_error_body({{"error", "TEAPOT"}, {"message", "short and stout"}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->code, ErrorCode::kInternalError);
  EXPECT_EQ(unknown->message, "TEAPOT: short and stout");
  EXPECT_FALSE(parse_error_body(nlohmann::json::array()));
  EXPECT_FALSE(parse_error_body({{"error", 5}, {"message", "x"}}));
  EXPECT_FALSE(parse_error_body({{"error", "X"}}));
  // A hostile retryAfter is clamped to a day.
  auto huge = parse_error_body({{"error", "X"}, {"message", "m"}, {"retryAfter", 1LL << 40}});
  EXPECT_EQ(huge->retry_after_seconds, 86400);
  auto negative = parse_error_body({{"error", "X"}, {"message", "m"}, {"retryAfter", -5}});
  EXPECT_EQ(negative->retry_after_seconds, 0);
}

}  // namespace
}  // namespace stargate
