// Where the change feed's long polls wait. A request that finds nothing new after its cursor
// parks here until a process of its tenant changes or its wait ends. Each parked request
// holds one of the HTTP front's worker threads, so only `max_parked` may wait at once, and
// only `per_tenant` of one tenant (so that one tenant, or one holder of its token opening
// long polls and dropping them, cannot take every place); the others are answered at once
// and the client falls back to polling. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace stargate::server {

// Why a change-feed request was answered.
enum class FeedAnswer {
  kChange,    // there were changes (at once or after a wait)
  kTimeout,   // the wait ended without a change
  kFull,      // every parking place was taken: answered at once
  kNoWait,    // the client asked for no wait and there was nothing
  kStopping,  // the server is stopping
  kLeft,      // the client went away while its request waited
  kCount
};
const char* feed_answer_name(FeedAnswer answer);

struct ChangeWaiterStats {
  std::size_t parked = 0;
  std::size_t max_parked = 0;
  std::uint64_t wakeups = 0;  // parked requests woken by a change of their tenant
  std::uint64_t answers[static_cast<int>(FeedAnswer::kCount)] = {};
};

class ChangeWaiters {
 public:
  ChangeWaiters(std::size_t max_parked, std::size_t per_tenant)
      : max_parked_(max_parked), per_tenant_(per_tenant) {}

  // A process of `tenant` changed: wakes that tenant's parked requests. An empty tenant
  // wakes every parked request (changes may have gone unheard: they look again).
  void notify(const std::string& tenant);
  // How many changes of `tenant` were announced so far (read before looking in the store,
  // so that a change committed in between is not slept through).
  std::uint64_t generation(const std::string& tenant) const;

  // A parking place, given back when it goes out of scope.
  class Place {
   public:
    Place() = default;
    Place(ChangeWaiters* owner, std::string tenant) : owner_(owner), tenant_(std::move(tenant)) {}
    Place(Place&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), tenant_(std::move(other.tenant_)) {}
    Place(const Place&) = delete;
    Place& operator=(Place&& other) noexcept {
      std::swap(owner_, other.owner_);
      std::swap(tenant_, other.tenant_);
      return *this;
    }
    ~Place();
    explicit operator bool() const { return owner_ != nullptr; }

   private:
    ChangeWaiters* owner_ = nullptr;
    std::string tenant_;
  };
  // An empty Place when all are taken, the tenant holds its share, or the server is
  // stopping.
  Place park(const std::string& tenant);

  // Waits until the tenant's generation differs from `seen`, until `deadline`, until
  // stop(), or until `gone` (asked every kLookForClient) says the client left; true when a
  // change came.
  static constexpr auto kLookForClient = std::chrono::seconds(1);
  bool wait(const std::string& tenant, std::uint64_t seen,
            std::chrono::steady_clock::time_point deadline,
            const std::function<bool()>& gone = nullptr);
  // Wakes every parked request for good.
  void stop();
  bool stopping() const;

  void answered(FeedAnswer answer);
  ChangeWaiterStats stats() const;

 private:
  std::uint64_t generation_locked(const std::string& tenant) const;

  const std::size_t max_parked_;
  const std::size_t per_tenant_;
  std::map<std::string, std::size_t> parked_by_tenant_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::uint64_t> generations_;
  std::uint64_t every_tenant_ = 0;  // added to each tenant's generation
  std::size_t parked_ = 0;
  bool stopping_ = false;
  ChangeWaiterStats counters_;
};

}  // namespace stargate::server
