// The process engine: a pool of worker threads that take accepted processes from the
// store's queue, run the handler of their type, and record progress and the outcome.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/handler.hpp"
#include "server/metrics.hpp"
#include "server/store.hpp"

namespace stargate::server {

class Engine {
 public:
  // `handlers` maps process type names to their handler.
  // `metrics` may be null.
  Engine(Store& store, std::map<std::string, std::shared_ptr<Handler>> handlers,
         std::size_t workers, Metrics* metrics = nullptr);
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

 private:
  void work(std::size_t index);
  void run_one(const ProcessRecord& record);
  // Saves a handler's outcome, trying again while the store fails; false if the engine
  // stopped first.
  bool save_outcome(const std::string& id, const HandlerOutcome& outcome);

  static constexpr auto kSaveRetryDelay = std::chrono::seconds(1);

  Store& store_;
  std::map<std::string, std::shared_ptr<Handler>> handlers_;
  std::size_t worker_count_;
  Metrics* metrics_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;     // new work
  std::condition_variable stop_cv_;  // stopping: handlers pausing between steps wake up
  std::uint64_t pending_ = 0;        // notifications not yet consumed, under mutex_
  std::atomic<bool> stopping_{false};
  std::atomic<bool> running_{false};
};

}  // namespace stargate::server
