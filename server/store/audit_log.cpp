// The audit writer thread.
#include "server/store/audit_log.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

#include <spdlog/spdlog.h>

namespace stargate::server {
namespace {

// Small, frequent batches: one long burst of hashing and inserting would take a core away
// from the request threads for tens of milliseconds and show as latency spikes.
constexpr auto kBatchDelay = std::chrono::milliseconds(10);

}  // namespace

AuditLog::AuditLog(AuditStore& store, std::size_t max_pending)
    : store_(store), max_pending_(max_pending), thread_([this] { loop(); }) {}

AuditLog::~AuditLog() {
  stop();
}

void AuditLog::record(AuditEvent event) {
  std::unique_lock lock(mutex_);
  if (pending_.size() >= kBehind && store_taking_ && !stopping_) {
    caught_up_.wait_for(lock, kMostWait,
                        [&] { return pending_.size() < kBehind || !store_taking_ || stopping_; });
  }
  if (pending_.size() >= max_pending_) {
    ++lost_;
    return;
  }
  pending_.push_back(std::move(event));
  ++queued_;
  if (pending_.size() == 1) wake_.notify_one();
}

void AuditLog::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = queued_;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return written_ >= target || stopping_; });
}

void AuditLog::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  caught_up_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t AuditLog::lost() const {
  std::lock_guard lock(mutex_);
  return lost_;
}

std::size_t AuditLog::pending() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

void AuditLog::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (pending_.empty() && stopping_) break;
    // Let a batch gather: one transaction for many events.
    if (!stopping_ && pending_.size() < kMaxBatch) {
      wake_.wait_for(lock, kBatchDelay, [&] { return stopping_; });
    }
    const std::size_t taken = std::min(pending_.size(), kMaxBatch);
    std::vector<AuditEvent> batch(std::make_move_iterator(pending_.begin()),
                                  std::make_move_iterator(pending_.begin() + taken));
    pending_.erase(pending_.begin(), pending_.begin() + taken);
    if (pending_.size() < kBehind) caught_up_.notify_all();
    lock.unlock();
    auto written = store_.append_audit(batch);
    lock.lock();
    if (!written) {
      spdlog::error("audit: cannot append {} records: {}", batch.size(), written.error());
      store_taking_ = false;
      caught_up_.notify_all();
      if (!stopping_) {
        // Keep them (in order) and try again after a pause.
        pending_.insert(pending_.begin(), std::make_move_iterator(batch.begin()),
                        std::make_move_iterator(batch.end()));
        wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
        continue;
      }
      lost_ += batch.size();
    } else {
      store_taking_ = true;
    }
    written_ += batch.size();
    flushed_.notify_all();
  }
  flushed_.notify_all();
}

}  // namespace stargate::server
