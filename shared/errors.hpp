// The gateway's error codes, their HTTP statuses, and the error body of seed 000 §11
// ({error, message, timestamp} plus correlationId, and retryAfter when the caller should wait).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "shared/expected.hpp"

namespace stargate {

enum class ErrorCode {
  kInvalidRequest,           // 400
  kInvalidToken,             // 401
  kInsufficientPermissions,  // 403
  kNotFound,                 // 404
  kMethodNotAllowed,         // 405
  kNotRetryable,             // 409
  kConflict,                 // 409: the request does not fit the current state
  kCursorExpired,            // 410: a change-feed cursor the gateway no longer knows
  kPayloadTooLarge,          // 413
  kUnsupportedMediaType,     // 415
  kIdempotencyKeyReused,     // 422
  kRateLimitExceeded,        // 429
  kInternalError,            // 500
  kServiceUnavailable,       // 503
};

// "INVALID_REQUEST", ... as they appear in the `error` field.
std::string_view error_name(ErrorCode code);
std::optional<ErrorCode> parse_error_code(std::string_view name);
int http_status(ErrorCode code);

// One error as the gateway reports it.
struct ApiError {
  ErrorCode code = ErrorCode::kInternalError;
  std::string message;
  std::optional<int> retry_after_seconds;  // 429 and 503 only
};

// The §11 error body. `timestamp` is RFC 3339; an empty correlation id is left out.
nlohmann::json error_body(const ApiError& error, std::string_view timestamp,
                          std::string_view correlation_id);

// Reads an error body back (the daemon does this with the gateway's answers). Fails on a
// body that is not an object with string `error` and `message` fields; an unknown code
// becomes kInternalError with the original name kept in the message.
Expected<ApiError> parse_error_body(const nlohmann::json& body);

}  // namespace stargate
