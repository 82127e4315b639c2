// The token endpoint's throttle.
#include "server/gateway/auth_throttle.hpp"

#include <algorithm>

namespace stargate::server {

AuthThrottle::AuthThrottle(int max_failures, Duration window, int concurrent)
    : max_failures_(std::max(1, max_failures)),
      window_(window),
      slots_(std::clamp(concurrent, 1, 1024)) {}

std::optional<Duration> AuthThrottle::admit(const std::string& address, TimePoint now) {
  std::lock_guard lock(mutex_);
  if (windows_.size() >= kMaxAddresses && windows_.count(address) == 0) {
    std::erase_if(windows_, [&](const auto& entry) {
      return entry.second.in_flight == 0 && now >= entry.second.start + window_;
    });
    // A flood from everywhere: forget what can be forgotten.
    if (windows_.size() >= kMaxAddresses) {
      std::erase_if(windows_, [](const auto& entry) { return entry.second.in_flight == 0; });
    }
  }
  auto& entry = windows_[address];
  if (now >= entry.start + window_) {
    entry.start = now;
    entry.failures = 0;
  }
  if (entry.failures >= max_failures_) {
    return std::chrono::duration_cast<Duration>(entry.start + window_ - now);
  }
  if (entry.failures + entry.in_flight >= max_failures_) return std::chrono::seconds(1);
  ++entry.in_flight;
  return std::nullopt;
}

void AuthThrottle::end(const std::string& address, bool failed, TimePoint now) {
  std::lock_guard lock(mutex_);
  const auto it = windows_.find(address);
  if (it == windows_.end()) return;
  auto& entry = it->second;
  entry.in_flight = std::max(0, entry.in_flight - 1);
  if (failed) {
    if (now >= entry.start + window_) {
      entry.start = now;
      entry.failures = 0;
    }
    ++entry.failures;
  }
  if (entry.failures == 0 && entry.in_flight == 0) windows_.erase(it);
}

AuthThrottle::Attempt::Attempt(AuthThrottle& throttle, std::string address, TimePoint now)
    : throttle_(throttle), address_(std::move(address)), refused_(throttle_.admit(address_, now)) {
  if (refused_ || !throttle_.shared_) return;
  // The other gateways' failures too (a Redis that cannot answer refuses nothing).
  auto shared = throttle_.shared_->refused(address_, throttle_.max_failures_);
  if (shared && *shared) {
    throttle_.end(address_, false, now);
    refused_ = *shared;
  }
}

AuthThrottle::Attempt::~Attempt() {
  if (!refused_ && !ended_) throttle_.end(address_, false, now_utc());
}

void AuthThrottle::Attempt::failed(TimePoint now) {
  if (refused_ || ended_) return;
  ended_ = true;
  throttle_.end(address_, true, now);
  if (throttle_.shared_) (void)throttle_.shared_->failed(address_, throttle_.window_);
}

AuthThrottle::Slot::Slot(AuthThrottle& throttle, Duration wait) : throttle_(throttle) {
  acquired = throttle_.slots_.try_acquire_for(wait);
}

AuthThrottle::Slot::~Slot() {
  if (acquired) throttle_.slots_.release();
}

}  // namespace stargate::server
