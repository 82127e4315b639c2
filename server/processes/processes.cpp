#include "server/processes/processes.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "server/processes/requests.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"
#include "shared/logging.hpp"

namespace stargate::server {
namespace {

ApiError store_unavailable(const char* what, const std::string& error, const Caller& caller) {
  spdlog::error("{}: {} [{}]", what, error, caller.correlation_id);
  return {ErrorCode::kServiceUnavailable, "Store unavailable", 5};
}

ApiError not_found() {
  return {ErrorCode::kNotFound, "Process not found", std::nullopt};
}

ApiError forbidden() {
  return {ErrorCode::kInsufficientPermissions, "ProcessType not authorized", std::nullopt};
}

}  // namespace

bool Caller::may_use(const std::string& process_type) const {
  const std::string wanted = scope_for(process_type);
  return std::find(scopes.begin(), scopes.end(), wanted) != scopes.end();
}

std::optional<CompletedCache::Entry> CompletedCache::find(const std::string& process_id) const {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(process_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void CompletedCache::remember(const std::string& process_id, Entry entry) {
  std::lock_guard lock(mutex_);
  if (entries_.size() >= kCapacity) entries_.clear();
  entries_[process_id] = std::move(entry);
}

Processes::Processes(ProcessStore& store, std::map<std::string, Duration> expected_durations,
                     std::function<void()> queued)
    : store_(store),
      expected_(std::make_shared<const Durations>(std::move(expected_durations))),
      queued_(std::move(queued)) {}

void Processes::set_expected_durations(std::map<std::string, Duration> expected_durations) {
  auto next = std::make_shared<const Durations>(std::move(expected_durations));
  std::lock_guard lock(expected_mutex_);
  expected_ = std::move(next);
}

std::shared_ptr<const Processes::Durations> Processes::expected() const {
  std::lock_guard lock(expected_mutex_);
  return expected_;
}

std::optional<TimePoint> Processes::estimate(const Durations& expected,
                                             const std::string& process_type, TimePoint now) {
  const auto found = expected.find(process_type);
  if (found == expected.end()) return std::nullopt;
  return now + found->second;
}

Expected<Processes::Submitted, ApiError> Processes::submit(const Caller& caller,
                                                           SubmitRequest request, TimePoint now) {
  if (!caller.may_use(request.process_type)) return Unexpected{forbidden()};
  const auto expected_durations = expected();
  if (expected_durations->count(request.process_type) == 0) {
    return Unexpected{ApiError{ErrorCode::kInvalidRequest,
                               "Unknown processType: " + request.process_type, std::nullopt}};
  }
  NewProcess process;
  process.tenant = caller.tenant;
  process.client_id = caller.client_id;
  process.correlation_id = caller.correlation_id;
  process.now = now;
  process.estimated_completion = estimate(*expected_durations, request.process_type, now);
  process.request_hash = request_hash(request);
  process.request = std::move(request);
  auto inserted = store_.create_process(process);
  if (!inserted) return Unexpected{store_unavailable("submit", inserted.error(), caller)};
  // A key already held: the same request again is a replay, another request a conflict.
  if (!inserted->inserted && inserted->held_request_hash != process.request_hash) {
    return Unexpected{ApiError{ErrorCode::kIdempotencyKeyReused,
                               "Idempotency key already used with a different request",
                               std::nullopt}};
  }
  const auto& view = inserted->process.view;
  log_fields().process_id = view.process_id;  // for what this thread logs of the request
  if (inserted->inserted) {
    if (queued_) queued_();
    spdlog::info("process {}: accepted {} for tenant {} (client process {}) [{}]", view.process_id,
                 view.process_type, caller.tenant, view.client_process_id, caller.correlation_id);
  }
  return Submitted{view, inserted->inserted};
}

Expected<Processes::StatusAnswer, ApiError> Processes::status(const Caller& caller,
                                                              const std::string& process_id) {
  if (!is_process_id(process_id)) return Unexpected{not_found()};
  if (auto cached = completed_.find(process_id)) {
    if (cached->tenant != caller.tenant) return Unexpected{not_found()};
    if (!caller.may_use(cached->process_type)) return Unexpected{forbidden()};
    return StatusAnswer{std::move(cached->body), true};
  }
  auto record = store_.get_process(caller.tenant, process_id);
  if (!record) return Unexpected{store_unavailable("status", record.error(), caller)};
  if (!record->has_value()) return Unexpected{not_found()};
  const auto& view = (*record)->view;
  if (!caller.may_use(view.process_type)) return Unexpected{forbidden()};
  std::string body = dump_json(to_json(view));
  if (view.status == ProcessStatus::kCompleted) {
    completed_.remember(process_id, {(*record)->tenant, view.process_type, body});
  }
  return StatusAnswer{std::move(body), is_terminal(view.status)};
}

Expected<ProcessRecord, ApiError> Processes::retry(const Caller& caller,
                                                   const std::string& process_id, TimePoint now) {
  if (!is_process_id(process_id)) return Unexpected{not_found()};
  // Nothing changes before the caller is known to hold the process type's scope: a store
  // that cannot tell the type answers 503 and retries nothing.
  auto record = store_.get_process(caller.tenant, process_id);
  if (!record) return Unexpected{store_unavailable("retry", record.error(), caller)};
  if (!record->has_value()) return Unexpected{not_found()};
  const auto& before = (*record)->view;
  if (!caller.may_use(before.process_type)) return Unexpected{forbidden()};
  auto outcome = store_.retry_process(caller.tenant, process_id, now,
                                      estimate(*expected(), before.process_type, now));
  if (!outcome) return Unexpected{store_unavailable("retry", outcome.error(), caller)};
  switch (*outcome) {
    case ProcessStore::RetryOutcome::kNotFound:
      return Unexpected{not_found()};
    case ProcessStore::RetryOutcome::kNotRetryable:
      return Unexpected{ApiError{
          ErrorCode::kNotRetryable,
          "Process " + process_id + " is " + std::string(to_string(before.status)) +
              (before.status == ProcessStatus::kFailed ? " and not retryable" : ", not failed"),
          std::nullopt}};
    case ProcessStore::RetryOutcome::kRetried:
      break;
  }
  if (queued_) queued_();
  auto retried = store_.get_process(caller.tenant, process_id);
  if (!retried) return Unexpected{store_unavailable("retry", retried.error(), caller)};
  if (!retried->has_value()) return Unexpected{store_unavailable("retry", "gone", caller)};
  spdlog::info("process {}: retry requested, attempt {} [{}]", process_id, (*retried)->attempt,
               caller.correlation_id);
  return std::move(**retried);
}

Expected<Processes::Page, ApiError> Processes::list(const Caller& caller, ListQuery query) {
  query.tenant = caller.tenant;
  auto records = store_.list_processes(query);
  if (!records) return Unexpected{store_unavailable("list", records.error(), caller)};
  Page page;
  if (records->size() == query.limit && !records->empty()) {
    page.next_cursor = records->back().view.process_id;
  }
  for (auto& record : *records) {
    if (caller.may_use(record.view.process_type)) page.processes.push_back(std::move(record));
  }
  return page;
}

Expected<ChangePage, ApiError> read_changes(ChangeFeed& feed, const Caller& caller,
                                            const std::string& cursor, std::size_t limit) {
  auto page = feed.changes_after({caller.tenant, cursor, limit});
  if (!page) return Unexpected{store_unavailable("changes", page.error(), caller)};
  if (!page->cursor_known) {
    return Unexpected{ApiError{ErrorCode::kCursorExpired,
                               "Cursor unknown or expired: read each process with GET "
                               "/api/stargate/processes/{processId}, then ask for changes "
                               "without a cursor",
                               std::nullopt}};
  }
  auto& processes = page->processes;
  processes.erase(std::remove_if(processes.begin(), processes.end(),
                                 [&](const ProcessRecord& record) {
                                   return !caller.may_use(record.view.process_type);
                                 }),
                  processes.end());
  return std::move(*page);
}

}  // namespace stargate::server
