// ChangeWaiters: a generation per tenant and one condition variable.
#include "server/gateway/change_waiters.hpp"

#include <algorithm>

namespace stargate::server {

const char* feed_answer_name(FeedAnswer answer) {
  switch (answer) {
    case FeedAnswer::kChange:
      return "change";
    case FeedAnswer::kTimeout:
      return "timeout";
    case FeedAnswer::kFull:
      return "full";
    case FeedAnswer::kNoWait:
      return "no_wait";
    case FeedAnswer::kStopping:
      return "stopping";
    case FeedAnswer::kLeft:
      return "left";
    case FeedAnswer::kCount:
      break;
  }
  return "unknown";
}

void ChangeWaiters::notify(const std::string& tenant) {
  {
    std::lock_guard lock(mutex_);
    if (tenant.empty()) {
      ++every_tenant_;
    } else {
      ++generations_[tenant];
    }
  }
  changed_.notify_all();
}

std::uint64_t ChangeWaiters::generation(const std::string& tenant) const {
  std::lock_guard lock(mutex_);
  return generation_locked(tenant);
}

std::uint64_t ChangeWaiters::generation_locked(const std::string& tenant) const {
  const auto it = generations_.find(tenant);
  return every_tenant_ + (it == generations_.end() ? 0 : it->second);
}

ChangeWaiters::Place::~Place() {
  if (owner_ == nullptr) return;
  std::lock_guard lock(owner_->mutex_);
  --owner_->parked_;
  if (const auto it = owner_->parked_by_tenant_.find(tenant_);
      it != owner_->parked_by_tenant_.end()) {
    if (--it->second == 0) owner_->parked_by_tenant_.erase(it);
  }
}

ChangeWaiters::Place ChangeWaiters::park(const std::string& tenant) {
  std::lock_guard lock(mutex_);
  if (stopping_ || parked_ >= max_parked_) return Place();
  auto& mine = parked_by_tenant_[tenant];
  if (mine >= per_tenant_) {
    if (mine == 0) parked_by_tenant_.erase(tenant);
    return Place();
  }
  ++mine;
  ++parked_;
  return Place(this, tenant);
}

bool ChangeWaiters::wait(const std::string& tenant, std::uint64_t seen,
                         std::chrono::steady_clock::time_point deadline,
                         const std::function<bool()>& gone) {
  std::unique_lock lock(mutex_);
  const auto done = [&] { return stopping_ || generation_locked(tenant) != seen; };
  bool woken = false;
  for (;;) {
    const auto until =
        gone ? std::min(deadline, std::chrono::steady_clock::now() + kLookForClient) : deadline;
    woken = changed_.wait_until(lock, until, done);
    if (woken || until == deadline) break;
    lock.unlock();
    const bool left = gone();
    lock.lock();
    if (left) break;
  }
  if (woken && !stopping_) {
    ++counters_.wakeups;
    return true;
  }
  return false;
}

void ChangeWaiters::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
}

bool ChangeWaiters::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void ChangeWaiters::answered(FeedAnswer answer) {
  std::lock_guard lock(mutex_);
  ++counters_.answers[static_cast<int>(answer)];
}

ChangeWaiterStats ChangeWaiters::stats() const {
  std::lock_guard lock(mutex_);
  ChangeWaiterStats stats = counters_;
  stats.parked = parked_;
  stats.max_parked = max_parked_;
  return stats;
}

}  // namespace stargate::server
