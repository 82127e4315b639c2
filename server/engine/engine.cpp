// Engine workers.
#include "server/engine/engine.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "shared/logging.hpp"
#include "shared/text.hpp"

namespace stargate::server {
namespace {

class WorkerContext final : public HandlerContext {
 public:
  WorkerContext(WorkQueue& store, const std::string& process_id, std::mutex& mutex,
                std::condition_variable& wake, const std::atomic<bool>& stopping)
      : store_(store), process_id_(process_id), mutex_(mutex), wake_(wake), stopping_(stopping) {}

  void progress(int percent, const std::string& step) override {
    const int clamped = std::clamp(percent, 0, 100);
    if (auto saved = store_.update_progress(process_id_, clamped, step, now_utc()); !saved) {
      spdlog::warn("process {}: cannot save progress: {}", process_id_, saved.error());
    }
    spdlog::debug("process {}: step {} ({}%)", process_id_, step, clamped);
  }

  bool pause(Duration duration) override {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, duration, [&] { return stopping_.load(); });
  }

 private:
  WorkQueue& store_;
  const std::string& process_id_;
  std::mutex& mutex_;
  std::condition_variable& wake_;
  const std::atomic<bool>& stopping_;
};

}  // namespace

Engine::Engine(WorkQueue& store, std::map<std::string, std::shared_ptr<Handler>> handlers,
               std::size_t workers, Metrics* metrics, Duration stuck_after)
    : store_(store),
      handlers_(std::move(handlers)),
      worker_count_(std::max<std::size_t>(1, workers)),
      metrics_(metrics),
      stuck_after_(stuck_after),
      busy_since_(worker_count_),
      busy_ids_(worker_count_) {}

Engine::~Engine() {
  stop();
}

std::vector<std::string> Engine::set_handlers(
    std::map<std::string, std::shared_ptr<Handler>> handlers) {
  std::vector<std::string> kept;
  std::lock_guard lock(handlers_mutex_);
  for (auto& [type, handler] : handlers_) {
    if (handlers.try_emplace(type, std::move(handler)).second) kept.push_back(type);
  }
  handlers_ = std::move(handlers);
  return kept;
}

std::shared_ptr<Handler> Engine::handler_for(const std::string& process_type) const {
  std::lock_guard lock(handlers_mutex_);
  const auto found = handlers_.find(process_type);
  return found == handlers_.end() ? nullptr : found->second;
}

Status Engine::start() {
  auto requeued = store_.requeue_interrupted(now_utc());
  if (!requeued) return Unexpected{requeued.error()};
  if (*requeued > 0) spdlog::info("engine: resuming {} interrupted processes", *requeued);
  stopping_ = false;
  for (std::size_t i = 0; i < worker_count_; ++i)
    workers_.emplace_back([this, i] { work(i); });
  if (store_.renew_every() > Duration::zero())
    lease_keeper_ = std::thread([this] { keep_leases(); });
  running_ = true;
  spdlog::info("engine: {} workers started", worker_count_);
  return {};
}

void Engine::notify() {
  {
    std::lock_guard lock(mutex_);
    ++pending_;
  }
  wake_.notify_one();
}

void Engine::stop() {
  if (workers_.empty()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  stop_cv_.notify_all();
  for (auto& worker : workers_)
    worker.join();
  workers_.clear();
  if (lease_keeper_.joinable()) lease_keeper_.join();
  running_ = false;
  spdlog::info("engine: stopped");
}

EngineHealth Engine::health() const {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(busy_mutex_);
  EngineHealth health;
  health.workers = busy_since_.size();
  health.unsaved = unsaved_.size();
  for (const auto& since : busy_since_) {
    if (!since) continue;
    ++health.busy;
    const auto running = std::chrono::duration_cast<Duration>(now - *since);
    if (running > stuck_after_) ++health.stuck;
    health.longest_run = std::max(health.longest_run, running);
  }
  return health;
}

void Engine::work(std::size_t index) {
  while (!stopping_) {
    save_unsaved();
    auto next = store_.claim_next(now_utc());
    if (!next) {
      spdlog::error("engine worker {}: {}", index, next.error());
    } else if (next->has_value()) {
      {
        std::lock_guard lock(busy_mutex_);
        busy_since_[index] = std::chrono::steady_clock::now();
        busy_ids_[index] = (*next)->view.process_id;
      }
      run_one(**next);
      std::lock_guard lock(busy_mutex_);
      busy_since_[index].reset();
      busy_ids_[index].clear();
      continue;
    }
    // Nothing to do: a store whose claim waited for work is asked again at once. Else (or
    // when the store failed) sleep until notified, and look again every second in case the
    // notification went to a busy worker.
    if (next && store_.claim_waits()) continue;
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || pending_ > 0; });
    if (pending_ > 0) --pending_;
  }
}

void Engine::keep_leases() {
  const Duration every = store_.renew_every();
  std::unique_lock lock(mutex_);
  while (!stop_cv_.wait_for(lock, every, [&] { return stopping_.load(); })) {
    lock.unlock();
    std::vector<std::string> running;
    {
      std::lock_guard busy(busy_mutex_);
      for (const auto& id : busy_ids_) {
        if (!id.empty()) running.push_back(id);
      }
    }
    for (const auto& id : running) {
      if (auto renewed = store_.renew_lease(id, now_utc()); !renewed) {
        spdlog::warn("process {}: lease not renewed: {}", id, renewed.error());
      }
    }
    lock.lock();
  }
}

Status Engine::store_outcome(const std::string& id, const HandlerOutcome& outcome) {
  return outcome.ok ? store_.complete(id, outcome.result, now_utc())
                    : store_.fail_process(id, outcome.error, outcome.retryable, now_utc());
}

bool Engine::save_outcome(const std::string& id, const HandlerOutcome& outcome) {
  // A process whose outcome is not saved would stay in state processing, so a store that
  // fails (locked by another program, say) is tried again a few times. If the engine stops
  // first, the process is still marked processing, and the next start runs it again.
  std::string last_error;
  for (int attempt = 1; attempt <= kSaveAttempts; ++attempt) {
    Status saved = store_outcome(id, outcome);
    if (saved) {
      if (attempt > 1) spdlog::info("process {}: outcome saved at attempt {}", id, attempt);
      return true;
    }
    last_error = saved.error();
    if (auto held = store_.holds(id); held && !*held) {
      // Its lease ran out and another worker took it over: that worker's outcome counts.
      spdlog::warn(
          "process {}: another worker took it over (this worker's lease ran out); "
          "this outcome is dropped",
          id);
      return false;
    }
    spdlog::error("process {}: cannot save outcome (attempt {} of {}): {}", id, attempt,
                  kSaveAttempts, last_error);
    std::unique_lock lock(mutex_);
    if (stop_cv_.wait_for(lock, kSaveRetryDelay, [&] { return stopping_.load(); })) {
      spdlog::warn("process {}: outcome not saved before shutdown; it runs again at the next start",
                   id);
      return false;
    }
  }
  // Perhaps it is this outcome the store cannot hold: end the process with an error that
  // says so, which its client can retry.
  const ProcessError replacement{
      "OUTCOME_NOT_STORED",
      shorten_message("the handler finished but its outcome could not be stored: " + last_error),
      nlohmann::json::object()};
  if (store_.fail_process(id, replacement, true, now_utc())) {
    spdlog::error("process {}: failed with OUTCOME_NOT_STORED after {} attempts", id,
                  kSaveAttempts);
    return true;
  }
  // The store takes nothing: keep the outcome for later and free this worker.
  spdlog::error("process {}: outcome kept in memory until the store takes writes again", id);
  std::lock_guard lock(busy_mutex_);
  unsaved_.emplace_back(id, outcome);
  return false;
}

void Engine::save_unsaved() {
  std::vector<std::pair<std::string, HandlerOutcome>> pending;
  {
    std::lock_guard lock(busy_mutex_);
    pending.swap(unsaved_);
  }
  for (auto& [id, outcome] : pending) {
    if (store_outcome(id, outcome)) {
      spdlog::info("process {}: outcome kept in memory is saved", id);
      continue;
    }
    if (auto held = store_.holds(id); held && !*held) {
      spdlog::warn("process {}: another worker took it over; the outcome kept is dropped", id);
      continue;
    }
    std::lock_guard lock(busy_mutex_);
    unsaved_.emplace_back(std::move(id), std::move(outcome));
  }
}

void Engine::run_one(const ProcessRecord& record) {
  const auto& id = record.view.process_id;
  LogScope logging({record.correlation_id, record.tenant, record.view.client_process_id, id});
  const auto handler = handler_for(record.view.process_type);
  const auto started = now_utc();
  HandlerOutcome outcome;
  if (handler == nullptr) {
    outcome = HandlerOutcome::failure(
        {"NO_HANDLER", "No handler for process type " + record.view.process_type, {}}, false);
  } else {
    spdlog::info("process {}: {} started (tenant {}, attempt {}) [{}]", id,
                 record.view.process_type, record.tenant, record.attempt, record.correlation_id);
    WorkerContext context(store_, id, mutex_, stop_cv_, stopping_);
    try {
      outcome = handler->run({id, record.tenant, record.view.process_type, record.data}, context);
    } catch (const std::exception& e) {
      outcome = HandlerOutcome::failure({"HANDLER_ERROR", shorten_message(e.what()), {}}, true);
    }
  }
  if (outcome.interrupted) {
    spdlog::info("process {}: interrupted by shutdown; it runs again at the next start", id);
    return;
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(now_utc() - started);
  if (metrics_ != nullptr) {
    metrics_->handler_finished(record.view.process_type, outcome.ok,
                               std::chrono::duration<double>(took).count());
  }
  if (!save_outcome(id, outcome)) return;
  if (outcome.ok) {
    spdlog::info("process {}: completed in {} ms [{}]", id, took.count(), record.correlation_id);
  } else {
    spdlog::info("process {}: failed with {} (retryable: {}) [{}]", id, outcome.error.code,
                 outcome.retryable, record.correlation_id);
  }
}

}  // namespace stargate::server
