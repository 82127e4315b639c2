// JSON form of a local record.
#include "daemon/record.hpp"

namespace stargate::daemon {
namespace {

nlohmann::json time_or_null(const std::optional<TimePoint>& time) {
  return time ? nlohmann::json(format_timestamp(*time)) : nlohmann::json();
}

}  // namespace

nlohmann::json text_or_null(const std::string& text) {
  return text.empty() ? nlohmann::json() : nlohmann::json(text);
}

nlohmann::json to_json(const LocalRecord& record) {
  return {
      {"clientProcessId", record.client_process_id},
      {"processType", record.process_type},
      {"state", to_string(record.state)},
      {"processId", text_or_null(record.process_id)},
      {"progress", record.progress},
      {"currentStep", text_or_null(record.current_step)},
      {"result", record.result},
      {"error", record.error},
      {"retryable", record.retryable},
      {"attempts", record.attempts},
      {"lastError", text_or_null(record.last_error)},
      {"createdAt", format_timestamp(record.created_at)},
      {"submittedAt", time_or_null(record.submitted_at)},
      {"updatedAt", format_timestamp(record.updated_at)},
      {"completedAt", time_or_null(record.completed_at)},
  };
}

}  // namespace stargate::daemon
