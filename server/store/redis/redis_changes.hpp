// The change index in Redis. Per tenant: a stream stargate:changes:TENANT of process ids
// (trimmed to the last `retention`; the newest id trimmed is kept in the hash
// stargate:changes:trimmed), and an epoch in the hash stargate:changes:epochs (the time it
// was made, in microseconds). A cursor is "EPOCH-MS-SEQ": the epoch and the stream
// id of the last entry read. A cursor is refused when its epoch is not the tenant's (Redis
// lost its data, or entries were lost: see below), when it lies past the stream's newest
// id, or when entries after it were trimmed. Every entry is also added to stargate:changed
// (the tenant only, the last 1,000), which a listening gateway follows with a blocking
// XREAD to wake its long polls, whoever wrote the change.
// A writer whose entry could not be added (Redis unreachable) gives the tenant a new epoch
// as soon as Redis answers again, so that its readers resynchronise instead of missing the
// change.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "server/store/change_index.hpp"
#include "server/store/redis/redis_client.hpp"
#include "shared/duration.hpp"

namespace stargate::server {

class RedisChanges final : public ChangeIndex {
 public:
  static constexpr auto kRetention = std::chrono::hours(1);

  explicit RedisChanges(std::shared_ptr<redis::Client> redis,
                        Duration retention = std::chrono::duration_cast<Duration>(kRetention));
  ~RedisChanges() override;
  RedisChanges(const RedisChanges&) = delete;
  RedisChanges& operator=(const RedisChanges&) = delete;

  Status record(const std::string& tenant, const std::vector<std::string>& process_ids) override;
  // New epochs for the tenants whose entries were lost.
  void repair() override;
  Expected<std::string> head(const std::string& tenant) override;
  Expected<Read> after(const std::string& tenant, const std::string& cursor,
                       std::size_t count) override;
  void listen(std::function<void(const std::string& tenant)> listener) override;

 private:
  void follow(const std::function<void(const std::string&)>& listener);
  void stop_listening();
  // Waits up to `pause` unless told to stop; false when stopping.
  bool rest(std::chrono::milliseconds pause);
  std::string stream_of(const std::string& tenant) const;  // the tenant's stream's key

  std::shared_ptr<redis::Client> redis_;
  // Named apart from the tenants' streams ("changes:TENANT"): a tenant may be called
  // "epochs".
  const std::string epochs_;   // each tenant's stream's epoch (a new one after a loss)
  const std::string trimmed_;  // each tenant's stream's newest entry trimmed away
  const std::string wake_;     // one entry for every change: what listeners block on
  std::string retention_seconds_;
  std::mutex lost_mutex_;
  std::set<std::string> lost_;  // tenants whose readers must resynchronise
  std::mutex listen_mutex_;
  std::condition_variable stop_changed_;
  bool stop_ = false;
  std::thread listener_;
};

}  // namespace stargate::server
