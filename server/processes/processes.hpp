// The process API's decisions, apart from HTTP and from any one store: which process types
// a caller may use, replay or conflict for a reused idempotency key, when a retry is
// allowed, and which answers never change again (completed processes, kept in a bounded
// cache so that polling them costs no store read). Every refusal is the ApiError to
// answer; a store that fails is 503 "Store unavailable", logged with the request's
// correlation id.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/store/store.hpp"
#include "shared/duration.hpp"
#include "shared/errors.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

// The scope that lets a token use a process type.
inline std::string scope_for(std::string_view process_type) {
  return "process:" + std::string(process_type);
}

// Who asks: from a verified access token.
struct Caller {
  std::string tenant;
  std::string client_id;
  std::vector<std::string> scopes;  // "process:order", ...
  std::string correlation_id;       // of the request, for the logs

  bool may_use(const std::string& process_type) const;
};

// Answers of completed processes, which never change again. Bounded; cleared when full.
class CompletedCache {
 public:
  struct Entry {
    std::string tenant;
    std::string process_type;
    std::string body;
  };
  std::optional<Entry> find(const std::string& process_id) const;
  void remember(const std::string& process_id, Entry entry);

 private:
  static constexpr std::size_t kCapacity = 10000;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

// One page of the caller's change feed: only its tenant's processes, and of those only the
// types it may use (the cursor still moves past the others). A cursor the store does not
// know is CURSOR_EXPIRED (410), telling the client how to resynchronise.
Expected<ChangePage, ApiError> read_changes(ChangeFeed& feed, const Caller& caller,
                                            const std::string& cursor, std::size_t limit);

class Processes {
 public:
  // `expected_durations` names the process types there are and how long each is expected
  // to take; `queued` is called when a process was put on the work queue.
  Processes(ProcessStore& store, std::map<std::string, Duration> expected_durations,
            std::function<void()> queued);

  struct Submitted {
    ProcessView view;
    bool created = true;  // false: a replay of an earlier request with the same key
  };
  Expected<Submitted, ApiError> submit(const Caller& caller, SubmitRequest request, TimePoint now);

  // The status body, and whether it can still change.
  struct StatusAnswer {
    std::string body;
    bool final = true;
  };
  Expected<StatusAnswer, ApiError> status(const Caller& caller, const std::string& process_id);

  // A new attempt of a failed, retryable process.
  Expected<ProcessRecord, ApiError> retry(const Caller& caller, const std::string& process_id,
                                          TimePoint now);

  // One page of the caller's processes (only types it may use), and the cursor of the next
  // page when this one is full.
  struct Page {
    std::vector<ProcessRecord> processes;
    std::optional<std::string> next_cursor;
  };
  Expected<Page, ApiError> list(const Caller& caller, ListQuery query);

  // The process types there are from now on (a reload): requests being answered keep the
  // table they started with.
  void set_expected_durations(std::map<std::string, Duration> expected_durations);

 private:
  using Durations = std::map<std::string, Duration>;
  std::shared_ptr<const Durations> expected() const;
  static std::optional<TimePoint> estimate(const Durations& expected,
                                           const std::string& process_type, TimePoint now);

  ProcessStore& store_;
  mutable std::mutex expected_mutex_;
  std::shared_ptr<const Durations> expected_;  // under expected_mutex_
  std::function<void()> queued_;
  CompletedCache completed_;
};

}  // namespace stargate::server
