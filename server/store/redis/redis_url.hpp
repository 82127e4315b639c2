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
};

// redis://host[:port][/db]; a password in the URL is refused (it belongs in a file).
Expected<Endpoint> parse_redis_url(const std::string& url);

}  // namespace stargate::server::redis
