// The gateway's HTTP API on cpp-httplib: the OAuth2 token endpoint, the process API and
// the health probes (INTERFACES.md). cpp-httplib stays inside http_api.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/app/server_config.hpp"
#include "server/common/metrics.hpp"
#include "server/engine/engine.hpp"
#include "server/gateway/auth.hpp"
#include "server/gateway/rate_limiter.hpp"
#include "server/store/audit_log.hpp"
#include "server/store/store.hpp"

namespace stargate::server {

class SharedFailures;

// Engines beyond the store that readiness checks: a name ("redis") and a probe.
using Dependencies = std::vector<std::pair<std::string, std::function<Status()>>>;

class HttpApi {
 public:
  // `engine` is null in a gateway without one (`stargate-server gateway`): work is left to
  // the workers, and readiness and metrics leave the engine out.
  HttpApi(const ServerConfig& config, Store& store, Engine* engine, const TokenSigner& signer,
          RateLimiter& limiter, AuditLog& audit, Metrics& metrics, Dependencies dependencies = {});
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;

  // Binds the listening socket; the port actually bound (useful with port 0). Fails when the
  // TLS certificate or key cannot be used, naming the file and the reason.
  Expected<int> bind(const std::string& host, int port);
  // Serves until stop() is called (from another thread or a signal handler thread).
  void serve();
  void stop();
  bool uses_tls() const;
  // Connections accepted from now on get the certificate and key in these files; those open
  // keep theirs. Fails, changing nothing, when they cannot be used or TLS is not in use.
  Status reload_tls(const std::string& cert, const std::string& key);
  // The process types requests may name, and their expected durations, from now on.
  void reload_process_types(const ServerConfig& config);
  // Failed client authentications counted with the other gateways (before serve()).
  void share_auth_failures(std::shared_ptr<SharedFailures> shared);

  // The routes this gateway serves, as its OpenAPI document names them: method ("get",
  // "post") and path template ("/api/stargate/processes/{processId}").
  struct Route {
    std::string method;
    std::string path;
  };
  std::vector<Route> routes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stargate::server
