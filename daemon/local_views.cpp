// The socket API's views for operators: the send queue (as mailq shows it), health and
// Prometheus metrics.
#include <spdlog/spdlog.h>

#include "daemon/local_routes.hpp"
#include "daemon/record.hpp"
#include "shared/version.hpp"

namespace stargate::daemon {
namespace {

LocalResponse queue_failure(const std::string& message) {
  spdlog::error("{}", message);
  return local_error(ErrorCode::kInternalError, "queue error: " + message);
}

}  // namespace

void LocalRoutes::queue_view(Respond& respond) {
  ListFilter filter;
  filter.state = LocalState::kQueued;
  filter.limit = 10000;
  filter.oldest_first = true;
  auto records = queue_.list(filter);
  if (!records) return respond(queue_failure(records.error()));
  const auto now = now_utc();
  nlohmann::json items = nlohmann::json::array();
  for (const auto& record : *records) {
    items.push_back({
        {"clientProcessId", record.client_process_id},
        {"processType", record.process_type},
        {"createdAt", format_timestamp(record.created_at)},
        {"ageSeconds",
         std::chrono::duration_cast<std::chrono::seconds>(now - record.created_at).count()},
        {"attempts", record.attempts},
        {"lastError", text_or_null(record.last_error)},
    });
  }
  respond({200, {{"queued", items}}});
}

void LocalRoutes::health(Respond& respond) {
  const auto stats = dispatcher_.stats();
  auto queued = queue_.count(LocalState::kQueued);
  if (!queued) return respond(queue_failure(queued.error()));
  nlohmann::json token;  // null: none held yet
  if (const auto valid = gateway_.token_valid_for()) {
    token = {{"validForSeconds", std::chrono::duration_cast<std::chrono::seconds>(*valid).count()}};
  }
  nlohmann::json body = {
      {"version", version()},
      {"status", stats.degraded ? "degraded" : "ok"},
      {"gateway",
       {{"url", config_.gateway.url},
        {"consecutiveFailures", stats.consecutive_failures},
        {"lastError", text_or_null(stats.last_error)},
        {"lastSuccess", text_or_null(stats.last_success)},
        {"polling", stats.polling}}},
      {"token", token},
      {"processTypes", gateway_.granted_types()},
      {"queue",
       {{"queued", *queued},
        {"activeProcesses", stats.active_polls},
        {"writable", stats.queue_error.empty()},
        {"lastError", text_or_null(stats.queue_error)}}},
  };
  respond({200, body});
}

void LocalRoutes::metrics(Respond& respond) {
  const auto stats = dispatcher_.stats();
  std::string out;
  const auto metric = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  metric("stargated_requests", "gauge", "Local requests by state.");
  for (const auto state :
       {LocalState::kQueued, LocalState::kAccepted, LocalState::kProcessing, LocalState::kCompleted,
        LocalState::kFailed, LocalState::kRejected, LocalState::kCancelled}) {
    auto count = queue_.count(state);
    if (!count) return respond(queue_failure(count.error()));
    out += "stargated_requests{state=\"" + std::string(to_string(state)) + "\"} " +
           std::to_string(*count) + "\n";
  }
  metric("stargated_active_polls", "gauge", "Processes being polled.");
  out += "stargated_active_polls " + std::to_string(stats.active_polls) + "\n";
  metric("stargated_sends_total", "counter", "Submissions to the gateway, by outcome.");
  out += "stargated_sends_total{outcome=\"accepted\"} " + std::to_string(stats.sends_accepted) +
         "\nstargated_sends_total{outcome=\"rejected\"} " + std::to_string(stats.sends_rejected) +
         "\nstargated_sends_total{outcome=\"failed\"} " + std::to_string(stats.sends_failed) + "\n";
  metric("stargated_polls_total", "counter", "Status polls, by outcome.");
  out += "stargated_polls_total{outcome=\"ok\"} " + std::to_string(stats.polls_ok) +
         "\nstargated_polls_total{outcome=\"failed\"} " + std::to_string(stats.polls_failed) + "\n";
  metric("stargated_feed_requests_total", "counter", "Change-feed requests, by outcome.");
  out += "stargated_feed_requests_total{outcome=\"ok\"} " + std::to_string(stats.feed_ok) +
         "\nstargated_feed_requests_total{outcome=\"failed\"} " +
         std::to_string(stats.feed_failed) + "\n";
  metric("stargated_feed_changes_total", "counter",
         "Changes of followed processes the change feed reported.");
  out += "stargated_feed_changes_total " + std::to_string(stats.feed_changes) + "\n";
  metric("stargated_polling_feed", "gauge",
         "1 while changes come from the gateway's change feed, 0 while polling on the schedule.");
  out += std::string("stargated_polling_feed ") + (stats.polling == "feed" ? "1" : "0") + "\n";
  metric("stargated_hooks_total", "counter", "on_complete hooks run, by outcome.");
  out += "stargated_hooks_total{outcome=\"delivered\"} " + std::to_string(stats.hooks_succeeded) +
         "\nstargated_hooks_total{outcome=\"failed\"} " + std::to_string(stats.hooks_failed) + "\n";
  metric("stargated_gateway_consecutive_failures", "gauge", "Failed sends in a row.");
  out +=
      "stargated_gateway_consecutive_failures " + std::to_string(stats.consecutive_failures) + "\n";
  metric("stargated_degraded", "gauge", "1 when sends have failed alert_after times in a row.");
  out += std::string("stargated_degraded ") + (stats.degraded ? "1" : "0") + "\n";
  metric("stargated_pruned_total", "counter", "Finished records removed after their retention.");
  out += "stargated_pruned_total " + std::to_string(stats.pruned) + "\n";
  LocalResponse response;
  response.text = std::move(out);
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  respond(std::move(response));
}

}  // namespace stargate::daemon
