// The CLI's typed client of the daemon's socket API (HTTP/1.1 over a Unix socket). Beast
// stays inside daemon_client.cpp.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "shared/expected.hpp"

namespace stargate::cli {

struct Reply {
  int status = 0;
  nlohmann::json body;  // null when the body was empty or not JSON
};

// Why the socket could not be used; `message` says what to do about it.
struct ConnectError {
  enum class Kind { kNotRunning, kPermission, kOther } kind = Kind::kOther;
  std::string message;
};

class DaemonClient {
 public:
  explicit DaemonClient(std::string socket_path) : path_(std::move(socket_path)) {}

  // One request on a new connection. `timeout_seconds` bounds the whole exchange.
  Expected<Reply, ConnectError> call(const std::string& method, const std::string& target,
                                     const nlohmann::json& body = nullptr,
                                     int timeout_seconds = 30) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace stargate::cli
