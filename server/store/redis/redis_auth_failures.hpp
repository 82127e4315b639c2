// The token endpoint's failed authentications, counted in Redis by every gateway together:
// one key per address, stargate:authfail:ADDRESS, that expires with the address's window
// (so a flood from many addresses costs Redis one short-lived key each).
#pragma once

#include <memory>

#include "server/gateway/auth_throttle.hpp"
#include "server/store/redis/redis_client.hpp"

namespace stargate::server {

class RedisAuthFailures final : public SharedFailures {
 public:
  explicit RedisAuthFailures(std::shared_ptr<redis::Client> redis) : redis_(std::move(redis)) {}

  Expected<std::optional<Duration>> refused(const std::string& address, int max) override;
  Status failed(const std::string& address, Duration window) override;

 private:
  std::string key_of(const std::string& address) const;  // its failures' counter
  std::shared_ptr<redis::Client> redis_;
};

}  // namespace stargate::server
