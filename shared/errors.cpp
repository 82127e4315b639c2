// Error codes, statuses and the §11 error body.
#include "shared/errors.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include <nlohmann/json.hpp>

namespace stargate {
namespace {

struct CodeInfo {
  ErrorCode code;
  std::string_view name;
  int status;
};

constexpr std::array<CodeInfo, 14> kCodes = {{
    {ErrorCode::kInvalidRequest, "INVALID_REQUEST", 400},
    {ErrorCode::kInvalidToken, "INVALID_TOKEN", 401},
    {ErrorCode::kInsufficientPermissions, "INSUFFICIENT_PERMISSIONS", 403},
    {ErrorCode::kNotFound, "NOT_FOUND", 404},
    {ErrorCode::kMethodNotAllowed, "METHOD_NOT_ALLOWED", 405},
    {ErrorCode::kNotRetryable, "NOT_RETRYABLE", 409},
    {ErrorCode::kConflict, "CONFLICT", 409},
    {ErrorCode::kCursorExpired, "CURSOR_EXPIRED", 410},
    {ErrorCode::kPayloadTooLarge, "PAYLOAD_TOO_LARGE", 413},
    {ErrorCode::kUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", 415},
    {ErrorCode::kIdempotencyKeyReused, "IDEMPOTENCY_KEY_REUSED", 422},
    {ErrorCode::kRateLimitExceeded, "RATE_LIMIT_EXCEEDED", 429},
    {ErrorCode::kInternalError, "INTERNAL_ERROR", 500},
    {ErrorCode::kServiceUnavailable, "SERVICE_UNAVAILABLE", 503},
}};

const CodeInfo& info(ErrorCode code) {
  for (const auto& entry : kCodes) {
    if (entry.code == code) return entry;
  }
  return kCodes.at(12);  // INTERNAL_ERROR; every enumerator is in the table
}

}  // namespace

std::string_view error_name(ErrorCode code) {
  return info(code).name;
}

int http_status(ErrorCode code) {
  return info(code).status;
}

std::optional<ErrorCode> parse_error_code(std::string_view name) {
  for (const auto& entry : kCodes) {
    if (entry.name == name) return entry.code;
  }
  return std::nullopt;
}

nlohmann::json error_body(const ApiError& error, std::string_view timestamp,
                          std::string_view correlation_id) {
  nlohmann::json body = {
      {"error", error_name(error.code)},
      {"message", error.message},
      {"timestamp", timestamp},
  };
  if (error.retry_after_seconds) body["retryAfter"] = *error.retry_after_seconds;
  if (!correlation_id.empty()) body["correlationId"] = correlation_id;
  return body;
}

Expected<ApiError> parse_error_body(const nlohmann::json& body) {
  if (!body.is_object()) return fail("error body is not a JSON object");
  const auto code = body.find("error");
  const auto message = body.find("message");
  if (code == body.end() || !code->is_string()) return fail("error body has no string 'error'");
  if (message == body.end() || !message->is_string()) {
    return fail("error body has no string 'message'");
  }
  ApiError error;
  error.message = message->get<std::string>();
  if (auto known = parse_error_code(code->get_ref<const std::string&>())) {
    error.code = *known;
  } else {
    error.code = ErrorCode::kInternalError;
    error.message = code->get<std::string>() + ": " + error.message;
  }
  if (auto retry = body.find("retryAfter"); retry != body.end() && retry->is_number_integer()) {
    // A hostile or broken gateway must not make us wait for ever: clamp to a day.
    const auto seconds = std::clamp<std::int64_t>(retry->get<std::int64_t>(), 0, 86400);
    error.retry_after_seconds = static_cast<int>(seconds);
  }
  return error;
}

}  // namespace stargate
