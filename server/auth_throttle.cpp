// The token endpoint's throttle.
#include "server/auth_throttle.hpp"

#include <algorithm>

namespace stargate::server {

AuthThrottle::AuthThrottle(int max_failures, Duration window, int concurrent)
    : max_failures_(std::max(1, max_failures)),
      window_(window),
      slots_(std::clamp(concurrent, 1, 1024)) {}

std::optional<Duration> AuthThrottle::refused(const std::string& address, TimePoint now) {
  std::lock_guard lock(mutex_);
  const auto it = windows_.find(address);
  if (it == windows_.end()) return std::nullopt;
  const auto ends = it->second.start + window_;
  if (now >= ends) {
    windows_.erase(it);
    return std::nullopt;
  }
  if (it->second.failures < max_failures_) return std::nullopt;
  return std::chrono::duration_cast<Duration>(ends - now);
}

void AuthThrottle::failed(const std::string& address, TimePoint now) {
  std::lock_guard lock(mutex_);
  if (windows_.size() >= kMaxAddresses) {
    std::erase_if(windows_, [&](const auto& entry) { return now >= entry.second.start + window_; });
    if (windows_.size() >= kMaxAddresses) windows_.clear();  // a flood from everywhere
  }
  auto& entry = windows_[address];
  if (entry.failures == 0 || now >= entry.start + window_) entry = {now, 0};
  ++entry.failures;
}

AuthThrottle::Slot::Slot(AuthThrottle& throttle, Duration wait) : throttle_(throttle) {
  acquired = throttle_.slots_.try_acquire_for(wait);
}

AuthThrottle::Slot::~Slot() {
  if (acquired) throttle_.slots_.release();
}

}  // namespace stargate::server
