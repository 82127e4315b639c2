// The daemon's durable queue: every local request and its state, in SQLite (WAL, fsync on
// commit). A request is on disk before enqueue() returns, so an acknowledged request survives
// kill -9 and power loss. The schema is versioned with PRAGMA user_version.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/record.hpp"
#include "shared/codec.hpp"
#include "shared/expected.hpp"
#include "shared/sqlite.hpp"

namespace stargate::daemon {

struct NewRequest {
  std::string client_process_id;  // empty: a new UUID is made
  std::string process_type;
  nlohmann::json data = nlohmann::json::object();
};

struct EnqueueResult {
  LocalRecord record;
  bool existed = false;  // the clientProcessId was already known; nothing was queued
};

struct ListFilter {
  std::optional<LocalState> state;
  std::string process_type;
  std::size_t limit = 100;
  bool oldest_first = false;  // default: newest first
};

class Queue {
 public:
  // Opens or creates the queue file (and its directory), migrating an older schema. Fails on
  // a file written by a newer stargated.
  static Expected<std::unique_ptr<Queue>> open(const std::string& path, const Clock& clock);

  Expected<EnqueueResult> enqueue(const NewRequest& request);
  // Queues several requests in one transaction: one fsync acknowledges them all (group
  // commit). Each gets its own result; one bad request does not fail the others.
  std::vector<Expected<EnqueueResult>> enqueue_batch(const std::vector<NewRequest>& requests);
  Expected<std::optional<LocalRecord>> get(const std::string& client_process_id);
  Expected<std::vector<LocalRecord>> list(const ListFilter& filter);
  // The oldest queued request: the next to send.
  Expected<std::optional<LocalRecord>> next_queued();
  // Requests the gateway accepted that have not ended (to poll after a restart).
  Expected<std::vector<LocalRecord>> active();
  Expected<std::size_t> count(LocalState state);

  // State changes. Each checks the transition and fails, changing nothing, when it is not
  // allowed (e.g. cancelling a request that was already sent).
  Status record_send_failure(const std::string& id, const std::string& reason);
  Status mark_accepted(const std::string& id, const Accepted& accepted);
  Status mark_rejected(const std::string& id, const nlohmann::json& error);
  // Records what a poll returned. True when anything changed; an answer that changes nothing
  // writes nothing (10,000 processes polled every minute must not mean 10,000 fsyncs).
  Expected<bool> apply_status(const std::string& id, const ProcessView& view);
  Status record_poll_failure(const std::string& id, const std::string& reason);
  Status cancel(const std::string& id);
  // A retryable failure starts a new attempt: back to accepted, result and error cleared.
  Status mark_retried(const std::string& id);

  // Terminal records whose on_complete hook has not run (or been waived) yet.
  Expected<std::vector<LocalRecord>> hooks_due();
  Status mark_hook_done(const std::string& id);
  // Forgets terminal records that ended before `before` and whose hook is done.
  Expected<std::size_t> prune(TimePoint before);

  // The change-feed cursor last saved for this gateway URL; empty when there is none.
  Expected<std::string> feed_cursor(const std::string& gateway);
  // Saves it (empty: forgets it).
  Status save_feed_cursor(const std::string& gateway, const std::string& cursor);

  static constexpr int kSchemaVersion = 3;

 private:
  Queue(db::Database db, const Clock& clock) : db_(std::move(db)), clock_(clock) {}
  void migrate();
  std::optional<LocalRecord> load(const std::string& id);
  // One request inside the open transaction; throws db::DbError.
  EnqueueResult enqueue_locked(const NewRequest& request);
  // Loads the record, checks the transition to `to`, runs `update` in one transaction.
  template <typename F>
  Status transition(const std::string& id, LocalState to, bool retryable, F&& update);

  std::mutex mutex_;
  db::Database db_;
  const Clock& clock_;
  std::unique_ptr<db::Checkpointer> checkpointer_;
};

}  // namespace stargate::daemon
