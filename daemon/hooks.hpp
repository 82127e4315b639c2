// Result delivery to the local system: when a request reaches a terminal state, the
// `on_complete` command of its process type runs (through /bin/sh) with the record as JSON on
// stdin and STARGATE_CLIENT_PROCESS_ID, STARGATE_PROCESS_ID and STARGATE_STATE in its
// environment. It runs once per terminal state, and that it ran is recorded, so a restart
// does not run it again; a daemon stopped or killed while the hook runs runs it again on
// start: delivery is at least once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "daemon/config.hpp"
#include "daemon/queue.hpp"

namespace boost::asio {
class io_context;
}

namespace stargate::daemon {

class HookRunner {
 public:
  HookRunner(boost::asio::io_context& io, Queue& queue, const DaemonConfig& config);
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;

  // Runs the hooks that a previous run did not finish.
  void resume();
  // A request reached a terminal state: run its hook, or record that it has none.
  void terminal(const LocalRecord& record);
  // Stops running hooks (they run again after the restart) and waits for them.
  void stop();

  std::uint64_t succeeded() const { return succeeded_; }
  std::uint64_t failed() const { return failed_; }

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  std::atomic<std::uint64_t> succeeded_{0};
  std::atomic<std::uint64_t> failed_{0};
};

}  // namespace stargate::daemon
