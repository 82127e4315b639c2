#include "server/store/redis/redis_auth_failures.hpp"

namespace stargate::server {
namespace {

// KEYS[1] the address's key; ARGV[1] max. Milliseconds left of its window when it failed
// max times, else -1.
constexpr const char* kRefused = R"lua(
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) then return -1 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then return 1000 end
return left
)lua";

// KEYS[1] the address's key; ARGV[1] the window in milliseconds.
constexpr const char* kFailed = R"lua(
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
)lua";

}  // namespace

std::string RedisAuthFailures::key_of(const std::string& address) const {
  return redis_->key("authfail:" + address);
}

Expected<std::optional<Duration>> RedisAuthFailures::refused(const std::string& address, int max) {
  auto left = redis_->eval(kRefused, {key_of(address)}, {std::to_string(max)});
  if (!left) return Unexpected{left.error()};
  if (left->type != redis::Reply::Type::kInteger || left->integer < 0) {
    return std::optional<Duration>{};
  }
  return std::optional<Duration>{Duration(left->integer)};
}

Status RedisAuthFailures::failed(const std::string& address, Duration window) {
  auto counted = redis_->eval(kFailed, {key_of(address)}, {std::to_string(window.count())});
  if (!counted) return Unexpected{counted.error()};
  return {};
}

}  // namespace stargate::server
