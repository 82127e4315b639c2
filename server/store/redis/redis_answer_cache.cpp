#include "server/store/redis/redis_answer_cache.hpp"

namespace stargate::server {

std::string RedisAnswerCache::key_of(const std::string& process_id) const {
  return redis_->key("done:" + process_id);
}

Expected<std::optional<std::string>> RedisAnswerCache::get(const std::string& process_id) {
  auto value = redis_->command({"GET", key_of(process_id)});
  if (!value) return Unexpected{value.error()};
  if (value->type != redis::Reply::Type::kString) return std::optional<std::string>{};
  return std::optional<std::string>{std::move(value->text)};
}

Status RedisAnswerCache::put(const std::string& process_id, const std::string& document,
                             Duration ttl) {
  auto set =
      redis_->command({"SET", key_of(process_id), document, "PX", std::to_string(ttl.count())});
  if (!set) return Unexpected{set.error()};
  return {};
}

}  // namespace stargate::server
