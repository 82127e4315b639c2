// The completed processes' records in Redis: stargate:done:PROCESS_ID, the MongoDB document
// as JSON text, expiring after a while (memory: the completions of that while).
#pragma once

#include <memory>

#include "server/store/answer_cache.hpp"
#include "server/store/redis/redis_client.hpp"

namespace stargate::server {

class RedisAnswerCache final : public AnswerCache {
 public:
  explicit RedisAnswerCache(std::shared_ptr<redis::Client> redis) : redis_(std::move(redis)) {}

  Expected<std::optional<std::string>> get(const std::string& process_id) override;
  Status put(const std::string& process_id, const std::string& document, Duration ttl) override;

 private:
  std::string key_of(const std::string& process_id) const;  // its answer's key
  std::shared_ptr<redis::Client> redis_;
};

}  // namespace stargate::server
