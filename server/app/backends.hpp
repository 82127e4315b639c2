// The one place that names the store's backends: the configuration's [store] backend opened
// with what it needs (files in the state directory; Redis and MongoDB with their passwords
// from files or systemd credentials), and the rate limiter that goes with it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/app/server_config.hpp"
#include "server/gateway/auth_throttle.hpp"
#include "server/gateway/rate_limiter.hpp"
#include "server/store/store.hpp"

namespace stargate::server {

namespace redis {
class Client;
}

struct Backend {
  std::unique_ptr<Store> store;
  std::shared_ptr<redis::Client> redis;  // redis+mongo only
  std::unique_ptr<RateLimiter> limiter;
  std::shared_ptr<SharedFailures> auth_failures;  // redis+mongo only
  std::string description;                        // for the logs: where the state is
  // The engines the program depends on beyond the store itself, for readiness: a name
  // ("redis") and a probe.
  std::vector<std::pair<std::string, std::function<Status()>>> dependencies;
};

// `uri` with socketTimeoutMS set to `ms`, unless it sets one itself (any case).
std::string mongo_uri_with_reply_timeout(std::string uri, int ms);

// Opens the store (and, on redis+mongo, the connections; nothing is contacted yet, so a
// server that is down now makes the program not ready rather than fail to start).
Expected<Backend> open_backend(const ServerConfig& config);

}  // namespace stargate::server
