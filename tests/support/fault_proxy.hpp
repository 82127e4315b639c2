// Test support: an HTTP proxy on loopback in front of the real stargate-server that can
// answer some requests itself (a 503 burst, say), so that the daemon's handling of failures
// is tested against real network behaviour without changing the server.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace stargate::test {

class FaultProxy {
 public:
  // What to do with a request: forward it (std::nullopt) or answer with this status.
  struct Fault {
    int status = 503;
    std::string retry_after;     // Retry-After header when not empty
    std::size_t body_bytes = 0;  // when not 0: a body of this many bytes instead of an error
    std::string body;            // when not empty: this body (application/json)
  };
  using Decide =
      std::function<std::optional<Fault>(const std::string& method, const std::string& path)>;

  FaultProxy(int upstream_port, Decide decide);
  ~FaultProxy();
  int port() const { return port_; }
  // Method and path of every request seen, and when.
  struct Seen {
    std::string method;
    std::string path;
    std::chrono::steady_clock::time_point at;
    bool faulted = false;
  };
  std::vector<Seen> seen() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace stargate::test
