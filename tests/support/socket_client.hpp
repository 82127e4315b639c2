// Test support: a cpp-httplib client of stargated's Unix socket, sending "Host: localhost"
// as the daemon expects.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>

#include <httplib.h>

namespace stargate::test {

inline std::unique_ptr<httplib::Client> socket_client(const std::string& socket_path) {
  auto client = std::make_unique<httplib::Client>(socket_path);
  client->set_address_family(AF_UNIX);
  client->set_default_headers({{"Host", "localhost"}});
  client->set_read_timeout(std::chrono::seconds(60));
  return client;
}

}  // namespace stargate::test
