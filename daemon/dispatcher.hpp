// The dispatcher moves requests through their lives: it sends queued requests to the gateway
// one at a time in queue order, and polls every accepted process on the adaptive schedule
// until it ends, backing off on failures. It runs on the daemon's one Asio event loop, with
// timers instead of threads per process; blocking HTTP calls run on a small thread pool and
// their results come back to the loop, so the queue is only touched from the loop's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "daemon/config.hpp"
#include "daemon/gateway.hpp"
#include "daemon/queue.hpp"

namespace boost::asio {
class io_context;
}

namespace stargate::daemon {

struct DispatcherHealth {
  bool degraded = false;  // the last `alert_after` or more sends failed in a row
  int consecutive_failures = 0;
  std::string last_error;    // of the last failed send or poll; empty after a success
  std::string last_success;  // RFC 3339 time of the last answer from the gateway
  std::size_t active_polls = 0;
};

class Dispatcher {
 public:
  Dispatcher(boost::asio::io_context& io, Queue& queue, Gateway& gateway,
             const DaemonConfig& config);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;

  // Resumes after a (re)start: polls every accepted process, sends what is queued.
  void start();
  // Stops timers and waits for calls in flight (bounded by the gateway timeouts). Requests
  // not yet accepted stay queued on disk.
  void stop();
  // A request was queued: send it when its turn comes.
  void kick();
  // Sends now, cutting short any backoff wait.
  void flush();

  // Called on the loop's thread after any change of a record is saved.
  void set_listener(std::function<void(const std::string& client_process_id)> listener);

  DispatcherHealth health() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stargate::daemon
