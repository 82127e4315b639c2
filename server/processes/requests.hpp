// Decoding the process API's requests, apart from HTTP and the store: what a submit's body
// and headers say, and what a list's parameters ask for. Every byte here came from a
// client, so each function refuses bad input with the ApiError to answer, never throws, and
// never repeats raw bytes in its messages.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "server/store/store.hpp"
#include "shared/codec.hpp"
#include "shared/duration.hpp"
#include "shared/errors.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

struct SubmitLimits {
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_string_bytes = 64 * 1024;
};

// A submit: Content-Type must be JSON; the body is {clientProcessId, processType, data,
// idempotencyKey?}; an Idempotency-Key header (may be empty) must agree with the body's key.
Expected<SubmitRequest, ApiError> decode_submit(std::string_view content_type,
                                                std::string_view body,
                                                std::string_view idempotency_header,
                                                const SubmitLimits& limits);

// The SHA-256 of a request as it is compared on replays: its canonical JSON without the
// idempotency key.
std::string request_hash(const SubmitRequest& request);

// GET /api/stargate/processes?status=&processType=&limit=&cursor= (the query's parameters;
// the tenant is the caller's and is set by the caller).
Expected<ListQuery, ApiError> decode_list_query(
    const std::multimap<std::string, std::string>& params);

// GET /api/stargate/processes/changes?cursor=&wait=&limit=: where to start (empty: now),
// how long to hold the request when nothing changed (a duration such as "30s", or seconds;
// longer than `max_wait` is cut to it), and the page size (1-500, default 100).
struct ChangesQuery {
  std::string cursor;
  Duration wait = Duration::zero();
  std::size_t limit = 100;
};
Expected<ChangesQuery, ApiError> decode_changes_query(
    const std::multimap<std::string, std::string>& params, Duration max_wait);

// HTTP Basic client credentials, "Basic base64(id:secret)" with both parts form-urlencoded
// first (RFC 6749 §2.3.1); std::nullopt when the header is not well-formed Basic.
std::optional<std::pair<std::string, std::string>> basic_credentials(
    std::string_view authorization);

}  // namespace stargate::server
