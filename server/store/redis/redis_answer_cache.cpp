#include "server/store/redis/redis_answer_cache.hpp"

namespace stargate::server {

Expected<std::optional<std::string>> RedisAnswerCache::get(const std::string& process_id) {
  auto value = redis_->command({"GET", redis_->key("done:" + process_id)});
  if (!value) return Unexpected{value.error()};
  if (value->type != redis::Reply::Type::kString) return std::optional<std::string>{};
  return std::optional<std::string>{std::move(value->text)};
}

Status RedisAnswerCache::put(const std::string& process_id, const std::string& document,
                             Duration ttl) {
  auto set = redis_->command(
      {"SET", redis_->key("done:" + process_id), document, "PX", std::to_string(ttl.count())});
  if (!set) return Unexpected{set.error()};
  return {};
}

}  // namespace stargate::server
