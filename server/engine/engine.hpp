// The process engine: a pool of worker threads that take accepted processes from the
// store's queue, run the handler of their type, and record progress and the outcome.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/common/metrics.hpp"
#include "server/engine/handler.hpp"
#include "server/store/store.hpp"

namespace stargate::server {

// What the engine's workers are doing, for readiness and metrics.
struct EngineHealth {
  std::size_t workers = 0;
  std::size_t busy = 0;     // running a handler
  std::size_t stuck = 0;    // running one process for longer than `stuck_after`
  std::size_t unsaved = 0;  // outcomes the store refused, kept in memory to be saved later
  Duration longest_run{};   // of the processes running now
};

class Engine {
 public:
  // `handlers` maps process type names to their handler.
  // `metrics` may be null. A worker that runs one process longer than `stuck_after` counts
  // as stuck in health().
  Engine(WorkQueue& store, std::map<std::string, std::shared_ptr<Handler>> handlers,
         std::size_t workers, Metrics* metrics = nullptr,
         Duration stuck_after = std::chrono::minutes(15));
  ~Engine();
  Engine(const Engine&) = delete;

  // Requeues what a previous run left unfinished, then starts the workers.
  Status start();
  // Wakes a worker: new work is queued.
  void notify();
  // Asks the workers to stop at the next step boundary and waits for them. A process cut
  // short stays in the queue for the next start.
  void stop();
  bool running() const { return running_; }
  EngineHealth health() const;
  // The handlers of the processes started from now on (a reload); those running finish with
  // the handler they started with. A type missing from `handlers` keeps the one it had, so
  // that the processes already accepted of it still run (until the next start). Returns the
  // names of those types.
  std::vector<std::string> set_handlers(std::map<std::string, std::shared_ptr<Handler>> handlers);

 private:
  void work(std::size_t index);
  // Renews the leases of the processes the workers run, every store_.renew_every().
  void keep_leases();
  void run_one(const ProcessRecord& record);
  std::shared_ptr<Handler> handler_for(const std::string& process_type) const;
  // Saves a handler's outcome, trying kSaveAttempts times. When the store keeps refusing
  // it, saves a failure OUTCOME_NOT_STORED in its place; when even that fails, keeps the
  // outcome in memory (unsaved_) for the idle workers to save later, so that no worker
  // waits on the store for ever. False if the engine stopped first.
  bool save_outcome(const std::string& id, const HandlerOutcome& outcome);
  Status store_outcome(const std::string& id, const HandlerOutcome& outcome);
  // Tries once to save each outcome kept in memory.
  void save_unsaved();

  static constexpr int kSaveAttempts = 5;
  static constexpr auto kSaveRetryDelay = std::chrono::seconds(1);

  WorkQueue& store_;
  mutable std::mutex handlers_mutex_;
  std::map<std::string, std::shared_ptr<Handler>> handlers_;  // under handlers_mutex_
  std::size_t worker_count_;
  Metrics* metrics_;
  Duration stuck_after_;
  std::vector<std::thread> workers_;
  // When each worker started the process it runs (steady clock), or nullopt when idle.
  mutable std::mutex busy_mutex_;
  std::vector<std::optional<std::chrono::steady_clock::time_point>> busy_since_;
  std::vector<std::string> busy_ids_;  // the process each worker runs ("" when idle)
  std::thread lease_keeper_;
  std::vector<std::pair<std::string, HandlerOutcome>> unsaved_;  // under busy_mutex_
  std::mutex mutex_;
  std::condition_variable wake_;     // new work
  std::condition_variable stop_cv_;  // stopping: handlers pausing between steps wake up
  std::uint64_t pending_ = 0;        // notifications not yet consumed, under mutex_
  std::atomic<bool> stopping_{false};
  std::atomic<bool> running_{false};
};

}  // namespace stargate::server
