// The process API's request decoding.
#include "server/processes/requests.hpp"

#include <algorithm>

#include <sodium.h>

#include "server/common/digest.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"
#include "shared/text.hpp"

namespace stargate::server {
namespace {

Unexpected<ApiError> invalid(std::string message) {
  return Unexpected{ApiError{ErrorCode::kInvalidRequest, std::move(message), std::nullopt}};
}

const std::string* param(const std::multimap<std::string, std::string>& params, const char* name) {
  const auto it = params.find(name);
  return it == params.end() ? nullptr : &it->second;
}

// The `limit` parameter: 1 to `most`, `fallback` when absent.
Expected<std::size_t, ApiError> page_size(const std::multimap<std::string, std::string>& params,
                                          std::size_t most, std::size_t fallback) {
  const auto* limit = param(params, "limit");
  if (limit == nullptr) return fallback;
  if (limit->empty() || limit->size() > 3 ||
      limit->find_first_not_of("0123456789") != std::string::npos || std::stoul(*limit) < 1 ||
      std::stoul(*limit) > most) {
    return invalid("Parameter 'limit' must be 1-" + std::to_string(most));
  }
  return static_cast<std::size_t>(std::stoul(*limit));
}

}  // namespace

Expected<SubmitRequest, ApiError> decode_submit(std::string_view content_type,
                                                std::string_view body,
                                                std::string_view idempotency_header,
                                                const SubmitLimits& limits) {
  if (content_type.rfind("application/json", 0) != 0) {
    return Unexpected{ApiError{ErrorCode::kUnsupportedMediaType,
                               "Content-Type must be application/json", std::nullopt}};
  }
  auto parsed = parse_json(body, {limits.max_body_bytes, 32});
  if (!parsed) {
    const bool too_large = parsed.error().kind == JsonError::Kind::kTooLarge;
    return Unexpected{ApiError{too_large ? ErrorCode::kPayloadTooLarge : ErrorCode::kInvalidRequest,
                               "Malformed JSON: " + parsed.error().message, std::nullopt}};
  }
  if (auto long_string = find_long_string(*parsed, limits.max_string_bytes)) {
    return invalid("String at " + *long_string + " is longer than " +
                   std::to_string(limits.max_string_bytes) + " bytes");
  }
  auto request = parse_submit_request(*parsed);
  if (!request) return invalid(request.error());
  if (!idempotency_header.empty()) {
    if (!is_safe_id(idempotency_header)) {
      return invalid("Idempotency-Key must be 1-128 characters of letters, digits and -_.:");
    }
    if (!request->idempotency_key.empty() && request->idempotency_key != idempotency_header) {
      return invalid("idempotencyKey and the Idempotency-Key header differ");
    }
    request->idempotency_key = std::string(idempotency_header);
  }
  return std::move(*request);
}

std::string request_hash(const SubmitRequest& request) {
  SubmitRequest canonical = request;
  canonical.idempotency_key.clear();
  return sha256_hex(dump_json(to_json(canonical)));
}

Expected<ListQuery, ApiError> decode_list_query(
    const std::multimap<std::string, std::string>& params) {
  ListQuery query;
  if (const auto* status = param(params, "status")) {
    query.status = parse_process_status(*status);
    if (!query.status) {
      return invalid("Parameter 'status' must be accepted, processing, completed or failed");
    }
  }
  if (const auto* type = param(params, "processType")) {
    if (!type->empty() && !is_process_type_name(*type)) {
      return invalid("Parameter 'processType' is not a process type");
    }
    query.process_type = *type;
  }
  auto limit = page_size(params, 100, query.limit);
  if (!limit) return Unexpected{limit.error()};
  query.limit = *limit;
  if (const auto* cursor = param(params, "cursor")) {
    if (!cursor->empty() && !is_process_id(*cursor)) {
      return invalid("Parameter 'cursor' is not a process id");
    }
    query.cursor = *cursor;
  }
  return query;
}

Expected<ChangesQuery, ApiError> decode_changes_query(
    const std::multimap<std::string, std::string>& params, Duration max_wait) {
  ChangesQuery query;
  if (const auto* cursor = param(params, "cursor")) {
    if (cursor->size() > 128 ||
        cursor->find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789-_.") != std::string::npos) {
      return invalid("Parameter 'cursor' is not a cursor this gateway gave out");
    }
    query.cursor = *cursor;
  }
  if (const auto* wait = param(params, "wait")) {
    const bool seconds = !wait->empty() && wait->size() <= 6 &&
                         wait->find_first_not_of("0123456789") == std::string::npos;
    auto parsed = seconds ? Expected<Duration>(std::chrono::seconds(std::stoi(*wait)))
                          : parse_duration(*wait);
    if (!parsed) return invalid("Parameter 'wait' must be a duration such as 30s, or seconds");
    query.wait = std::min(*parsed, max_wait);
  }
  auto limit = page_size(params, 500, query.limit);
  if (!limit) return Unexpected{limit.error()};
  query.limit = *limit;
  return query;
}

std::optional<std::pair<std::string, std::string>> basic_credentials(
    std::string_view authorization) {
  constexpr std::string_view kScheme = "Basic ";
  if (authorization.rfind(kScheme, 0) != 0 || authorization.size() > 1024) return std::nullopt;
  const auto encoded = authorization.substr(kScheme.size());
  std::string decoded(encoded.size(), '\0');
  std::size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(),
                        encoded.data(), encoded.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return std::nullopt;
  }
  decoded.resize(length);
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  auto id = percent_decode(std::string_view(decoded).substr(0, colon));
  auto secret = percent_decode(std::string_view(decoded).substr(colon + 1));
  if (!id || !secret) return std::nullopt;
  return std::pair{std::move(*id), std::move(*secret)};
}

}  // namespace stargate::server
