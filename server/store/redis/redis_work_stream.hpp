// The queue index on a Redis Stream with one consumer group ("workers"): a gateway adds an
// entry per queued process (XADD), a worker reads new entries (XREADGROUP, blocking, which
// is also how it hears of new work at once), keeps the entry's idle time short while it
// works (XCLAIM to itself), takes over entries idle past the lease from dead workers
// (XAUTOCLAIM), and acknowledges and deletes an entry when its process needs it no more
// (XACK + XDEL). A set beside the stream names the processes an entry covers, so that an
// entry is added once per queued process and the sweeper finds the ones no entry covers.
// Keys: stargate:queue (stream), stargate:queue:covered (set), stargate:queue:sweep (lock).
#pragma once

#include <memory>
#include <string>

#include "server/store/queue_index.hpp"
#include "server/store/redis/redis_client.hpp"

namespace stargate::server {

class RedisWorkStream final : public QueueIndex {
 public:
  // `consumer`: this program's name in the group; `lease`: how long an entry may go
  // untouched before another worker takes it over.
  RedisWorkStream(std::shared_ptr<redis::Client> redis, std::string consumer, Duration lease);

  Status push(const std::vector<std::string>& process_ids) override;
  Status push_again(const std::string& process_id) override;
  Expected<std::optional<Entry>> next(Duration wait) override;
  Status touch(const Entry& entry) override;
  Status done(const Entry& entry) override;
  Expected<std::vector<std::string>> sweep_uncovered(
      const std::vector<std::string>& process_ids) override;
  Expected<bool> sweep_due(Duration every) override;
  Expected<std::size_t> forget_idle_workers(Duration idle) override;

 private:
  // Runs `args`, making the group first (and again after Redis lost it) when it is missing.
  Expected<redis::Reply> with_group(const std::vector<std::string>& args);

  std::shared_ptr<redis::Client> redis_;
  std::string consumer_;
  Duration lease_;
  const std::string stream_;      // the queue
  const std::string covered_;     // the processes an entry of it covers
  const std::string sweep_lock_;  // held by the one worker that sweeps
};

}  // namespace stargate::server
