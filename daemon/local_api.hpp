// The socket API's transport: HTTP/1.1 over a Unix socket with Boost.Beast, so that
// `curl --unix-socket` works. Beast stays inside local_api.cpp.
#pragma once

#include <memory>
#include <string>

#include "daemon/config.hpp"
#include "daemon/local_requests.hpp"
#include "daemon/local_routes.hpp"
#include "shared/expected.hpp"

namespace boost::asio {
class io_context;
}

namespace stargate::daemon {

class LocalApi {
 public:
  LocalApi(boost::asio::io_context& io, LocalRoutes& routes);
  ~LocalApi();
  LocalApi(const LocalApi&) = delete;

  // Adopts the socket systemd passed (LISTEN_FDS) or binds config.path: creates its
  // directory, replaces a stale socket file left by a crash, refuses a path held by a running
  // daemon or that is not a socket, and applies the configured mode and group. Then accepts.
  Status listen(const SocketConfig& config);

  // Stops accepting and removes the socket file if this process created it.
  void close();

  const std::string& path() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stargate::daemon
