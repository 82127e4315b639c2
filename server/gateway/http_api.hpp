// The gateway's HTTP API on cpp-httplib: the OAuth2 token endpoint, the process API and
// the health probes (INTERFACES.md). cpp-httplib stays inside http_api.cpp.
#pragma once

#include <memory>
#include <string>

#include "server/app/server_config.hpp"
#include "server/common/metrics.hpp"
#include "server/engine/engine.hpp"
#include "server/gateway/auth.hpp"
#include "server/gateway/rate_limiter.hpp"
#include "server/store/audit_log.hpp"
#include "server/store/store.hpp"

namespace stargate::server {

class HttpApi {
 public:
  HttpApi(const ServerConfig& config, Store& store, Engine& engine, const TokenSigner& signer,
          RateLimiter& limiter, AuditLog& audit, Metrics& metrics);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;

  // Binds the listening socket; the port actually bound (useful with port 0). Fails when the
  // TLS certificate or key cannot be used, naming the file and the reason.
  Expected<int> bind(const std::string& host, int port);
  // Serves until stop() is called (from another thread or a signal handler thread).
  void serve();
  void stop();
  bool uses_tls() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stargate::server
