// Bounds what client authentication at the token endpoint can cost. Each check of a secret
// runs Argon2id (64 MiB of memory and tens of milliseconds of CPU), so a stream of wrong
// secrets could take the whole machine: at most a few checks run at once, and an address
// that failed too often within a window is refused without a check until the window ends.
// Checks still running count against the limit as if they will fail, so that many
// requests sent at once cannot all pass before the first failure is counted.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <unordered_map>

#include "shared/clock.hpp"
#include "shared/duration.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

// Failed authentications counted by every gateway together (in Redis), so that an address
// gets max_failures tries in all, not that many per gateway.
class SharedFailures {
 public:
  virtual ~SharedFailures() = default;
  // How long `address` is refused when it failed `max` times within its current window.
  virtual Expected<std::optional<Duration>> refused(const std::string& address, int max) = 0;
  // One more failure of `address`; its window starts with its first failure.
  virtual Status failed(const std::string& address, Duration window) = 0;
};

class AuthThrottle {
 public:
  // `max_failures` failed checks per address within `window`; `concurrent` checks at once.
  AuthThrottle(int max_failures, Duration window, int concurrent);
  // Counts failures with the other gateways too; while `shared` fails (Redis down), each
  // gateway counts on its own.
  void share(std::shared_ptr<SharedFailures> shared) { shared_ = std::move(shared); }

  // One authentication from `address`. While it lives it holds one of the address's
  // max_failures tries; failed() makes it count for the rest of the window.
  class Attempt {
   public:
    Attempt(AuthThrottle& throttle, std::string address, TimePoint now);
    ~Attempt();
    Attempt(const Attempt&) = delete;
    // std::nullopt when admitted; else how long to wait: until the window ends when the
    // address failed too often, a second when its checks in flight could reach the limit.
    const std::optional<Duration>& refused() const { return refused_; }
    void failed(TimePoint now);

   private:
    AuthThrottle& throttle_;
    std::string address_;
    std::optional<Duration> refused_;
    bool ended_ = false;  // failed() has released the try
  };

  // Holds one of the check slots while it lives; `acquired` is false when none freed up
  // within the wait.
  class Slot {
   public:
    Slot(AuthThrottle& throttle, Duration wait);
    ~Slot();
    Slot(const Slot&) = delete;
    bool acquired = false;

   private:
    AuthThrottle& throttle_;
  };

 private:
  struct Window {
    TimePoint start{};
    int failures = 0;
    int in_flight = 0;  // admitted attempts not yet ended
  };
  std::optional<Duration> admit(const std::string& address, TimePoint now);
  void end(const std::string& address, bool failed, TimePoint now);
  static constexpr std::size_t kMaxAddresses = 100'000;  // memory bound under a flood

  int max_failures_;
  Duration window_;
  std::counting_semaphore<1024> slots_;
  std::mutex mutex_;
  std::unordered_map<std::string, Window> windows_;  // under mutex_
  std::shared_ptr<SharedFailures> shared_;
};

}  // namespace stargate::server
