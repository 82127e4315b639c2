// The dispatcher moves requests through their lives: it sends queued requests to the gateway
// one at a time in queue order, follows every accepted process until it ends (through the
// gateway's change feed, one outstanding request for all of them, or by polling each on the
// seed's adaptive schedule), backs off on failures, hands terminal records to the hooks, and
// prunes old ones.
// It runs on the daemon's one Asio event loop, with timers instead of threads per process;
// blocking HTTP calls run on a small thread pool and their results come back to the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemon/config.hpp"
#include "daemon/gateway.hpp"
#include "daemon/hooks.hpp"
#include "daemon/queue.hpp"
#include "shared/errors.hpp"

namespace boost::asio {
class io_context;
}

namespace stargate::daemon {

struct DispatcherStats {
  // The last `alert_after` or more sends failed in a row, or the queue file refused to
  // record the gateway's last answer.
  bool degraded = false;
  int consecutive_failures = 0;
  std::string last_error;    // of the last failed send or poll; empty after a success
  std::string last_success;  // RFC 3339 time of the last answer from the gateway
  std::string queue_error;   // why the queue file refused the last write; empty when it did not
  std::size_t active_polls = 0;
  // "feed" (changes come from the gateway's change feed), "schedule" (each process polled
  // on the seed's schedule) or "starting" (finding out which).
  std::string polling = "schedule";
  // Counters since start.
  std::uint64_t sends_accepted = 0, sends_rejected = 0, sends_failed = 0;
  std::uint64_t polls_ok = 0, polls_failed = 0;
  std::uint64_t feed_ok = 0, feed_failed = 0, feed_changes = 0;
  std::uint64_t hooks_succeeded = 0, hooks_failed = 0;
  std::uint64_t pruned = 0;
};

class Dispatcher {
 public:
  Dispatcher(boost::asio::io_context& io, Queue& queue, Gateway& gateway, HookRunner& hooks,
             const DaemonConfig& config);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;

  // Resumes after a (re)start: polls every accepted process, sends what is queued, runs the
  // hooks a previous run did not finish, and starts pruning.
  void start();
  // Stops timers and waits for calls in flight (bounded by the gateway timeouts). Requests
  // not yet accepted stay queued on disk.
  void stop();
  // A request was queued: send it when its turn comes.
  void kick();
  // Sends now, cutting short any backoff wait.
  void flush();

  // Withdraws a request that is still queued. Fails (changing nothing) for one already sent,
  // being sent, or ended.
  Status cancel(const std::string& id);

  // Asks the gateway for a new attempt of a failed, retryable process; `done` gets nothing on
  // success, or the error to report. Called and answered on the loop's thread.
  using RetryDone = std::function<void(std::optional<ApiError>)>;
  void retry(const std::string& id, RetryDone done);

  // Called on the loop's thread after any change of a record is saved.
  void set_listener(std::function<void(const std::string& client_process_id)> listener);

  DispatcherStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stargate::daemon
