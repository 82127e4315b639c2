// Bounds what client authentication at the token endpoint can cost. Each check of a secret
// runs Argon2id (64 MiB of memory and tens of milliseconds of CPU), so a stream of wrong
// secrets could take the whole machine: at most a few checks run at once, and an address
// that failed too often within a window is refused without a check until the window ends.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <unordered_map>

#include "shared/clock.hpp"
#include "shared/duration.hpp"

namespace stargate::server {

class AuthThrottle {
 public:
  // `max_failures` failed checks per address within `window`; `concurrent` checks at once.
  AuthThrottle(int max_failures, Duration window, int concurrent);

  // How long `address` must wait before it may try again; std::nullopt when it may now.
  std::optional<Duration> refused(const std::string& address, TimePoint now);
  void failed(const std::string& address, TimePoint now);

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
  };
  static constexpr std::size_t kMaxAddresses = 100'000;  // memory bound under a flood

  int max_failures_;
  Duration window_;
  std::counting_semaphore<1024> slots_;
  std::mutex mutex_;
  std::unordered_map<std::string, Window> windows_;  // under mutex_
};

}  // namespace stargate::server
