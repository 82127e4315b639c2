// The JSON bodies of the gateway API (seed 000 §3 and §11): the submit request, the 202
// answer, and the status of a process. Parsers name the offending field in their errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/clock.hpp"
#include "shared/expected.hpp"
#include "shared/process_state.hpp"

namespace stargate {

// Limits on what a submit request may hold; bigger values are refused, not truncated.
inline constexpr std::size_t kMaxProcessTypeLength = 64;

// POST /api/stargate/processes
struct SubmitRequest {
  std::string client_process_id;
  std::string process_type;
  nlohmann::json data = nlohmann::json::object();
  std::string idempotency_key;  // may be empty when sent as the Idempotency-Key header
};

// Fails with "Missing required field: clientProcessId", "Field 'data' must be an object",
// "Unknown field: foo", ... Process types are lowercase names ([a-z0-9_-], 1-64 chars).
Expected<SubmitRequest> parse_submit_request(const nlohmann::json& body);
nlohmann::json to_json(const SubmitRequest& request);

bool is_process_type_name(std::string_view name);

// The 202 answer to a submit.
struct Accepted {
  std::string process_id;
  std::string client_process_id;
  std::string process_type;
  TimePoint created_at{};
  std::optional<TimePoint> estimated_completion;
};

std::string status_url(std::string_view process_id);
nlohmann::json to_json(const Accepted& accepted);
Expected<Accepted> parse_accepted(const nlohmann::json& body);

// A failed process's error, as in §11: {code, message, details}.
struct ProcessError {
  std::string code;
  std::string message;
  nlohmann::json details = nlohmann::json::object();
};

// GET /api/stargate/processes/{id}
struct ProcessView {
  std::string process_id;
  std::string client_process_id;
  std::string process_type;
  ProcessStatus status = ProcessStatus::kAccepted;
  int progress = 0;  // 0..100
  std::string current_step;
  nlohmann::json result;  // null until completed
  std::optional<ProcessError> error;
  bool retryable = false;
  TimePoint created_at{};
  TimePoint updated_at{};
  std::optional<TimePoint> finished_at;  // completedAt or failedAt
  std::optional<TimePoint> estimated_completion;
};

// The §11 body for the view's status: `result` and `completedAt` when completed; `error`,
// `failedAt` and `retryable` when failed; `currentStep` and `estimatedCompletionTime` while
// running.
nlohmann::json to_json(const ProcessView& view);
Expected<ProcessView> parse_process_view(const nlohmann::json& body);
nlohmann::json to_json(const ProcessError& error);
Expected<ProcessError> parse_process_error(const nlohmann::json& body);

// The token endpoint's answer (RFC 6749 §5.1) as the daemon uses it.
struct TokenAnswer {
  std::string access_token;        // visible ASCII only: it goes into an Authorization header
  std::int64_t expires_in = 3600;  // seconds, clamped to 1 s .. 30 days
  // The process types of a "process:TYPE ..." scope, when the answer names one.
  std::optional<std::vector<std::string>> process_types;
};
Expected<TokenAnswer> parse_token_answer(const nlohmann::json& body);

// One answer of the gateway's change feed, {changes, cursor, more, retryAfter?}, as the
// daemon uses it. Fails without a cursor (1-128 characters) or a changes array; entries
// that are not status bodies are counted and left out, not fatal.
struct ChangesAnswer {
  std::vector<ProcessView> changes;
  std::size_t unreadable = 0;
  std::string cursor;
  bool more = false;
  std::optional<std::int64_t> retry_after_seconds;  // 0 .. 3600
};
Expected<ChangesAnswer> parse_changes_answer(const nlohmann::json& body);

}  // namespace stargate
