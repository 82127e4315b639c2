// Where Redis is: redis://host[:port][/db], as server.toml names it.
#pragma once

#include <string>

#include "shared/expected.hpp"

namespace stargate::server::redis {

struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  int database = 0;
  std::string password;  // empty: no AUTH
  // Every key's name begins with it and a colon: deployments with different prefixes can
  // share one database ([redis] prefix).
  std::string prefix = "stargate";
};

// redis://host[:port][/db]; a password in the URL is refused (it belongs in a file).
Expected<Endpoint> parse_redis_url(const std::string& url);

// [redis] prefix: 1 to 64 letters, digits and _ . : - (so that it reads the same in logs,
// redis-cli and an ACL key pattern).
Status check_key_prefix(const std::string& prefix);

}  // namespace stargate::server::redis
