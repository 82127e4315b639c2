// One request in the daemon's queue, from the moment a local user submits it to its end,
// and its JSON form in the socket API (GET /v1/processes/{id}).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/clock.hpp"
#include "shared/process_state.hpp"

namespace stargate::daemon {

struct LocalRecord {
  std::int64_t seq = 0;  // queue order
  std::string client_process_id;
  std::string process_type;
  nlohmann::json data = nlohmann::json::object();
  std::string idempotency_key;  // made at enqueue time, reused on every attempt
  LocalState state = LocalState::kQueued;
  std::string process_id;  // the gateway's id, once accepted
  int progress = 0;
  std::string current_step;
  nlohmann::json result;  // null until completed
  nlohmann::json error;   // {code, message, details} when failed or rejected; else null
  bool retryable = false;
  int attempts = 0;        // send attempts
  std::string last_error;  // why the last attempt to send or poll failed
  TimePoint created_at{};
  std::optional<TimePoint> submitted_at;  // when the gateway accepted it
  TimePoint updated_at{};
  std::optional<TimePoint> completed_at;  // when it reached a terminal state
  bool hook_done = false;                 // on_complete ran for the terminal state
};

// The socket API's view; field names are part of the /v1 contract.
nlohmann::json to_json(const LocalRecord& record);
// A text of that view: null when empty.
nlohmann::json text_or_null(const std::string& text);

}  // namespace stargate::daemon
