// Internals of HttpApi shared by its translation units (http_api.cpp: setup, health and
// metrics; http_token.cpp: the OAuth2 token endpoint; http_processes.cpp: the process
// API). Only these files include cpp-httplib.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <httplib.h>
#include <openssl/ssl.h>

#include "server/gateway/auth_throttle.hpp"
#include "server/gateway/change_waiters.hpp"
#include "server/gateway/http_api.hpp"
#include "server/gateway/http_front.hpp"
#include "server/gateway/http_stream.hpp"
#include "server/processes/processes.hpp"
#include "shared/errors.hpp"
#include "shared/logging.hpp"

namespace stargate::server {

inline constexpr const char* kCorrelationHeader = "X-Correlation-ID";
inline constexpr const char* kJson = "application/json";
// The change feed's path, and the header that tells clients it is offered (on token, submit
// and status answers, so that discovering it costs no request of its own).
inline constexpr const char* kChangesPath = "/api/stargate/processes/changes";
inline constexpr const char* kFeedHeader = "X-StarGate-Feed";

// What the audit record of the request being answered needs. cpp-httplib runs the
// pre-routing handler, the route and the logger of one request on one thread.
struct RequestContext {
  std::chrono::steady_clock::time_point start;
  std::string client_id;
  std::string tenant;
  bool previous_secret = false;  // the client authenticated with the secret a rotation replaced
};
extern thread_local RequestContext request_context;
// Who asks, once known: for the audit record and for this thread's log fields.
void note_caller(const std::string& client_id, const std::string& tenant);
// Whether the client of the request this thread answers has gone (closed its side), for a
// route that holds its request; false when not known.
bool client_left();

// The correlation id of this exchange: set on the response before routing.
std::string correlation_id(const httplib::Response& res);
void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, const ApiError& error);
void send_error(httplib::Response& res, ErrorCode code, std::string message);
// RFC 6749 §5.2 error answer of the token endpoint.
void send_oauth_error(httplib::Response& res, int status, const std::string& error,
                      const std::string& description);
// Client credentials from HTTP Basic (RFC 6749 §2.3.1) or the form body.
std::pair<std::string, std::string> client_credentials(const httplib::Request& req);
// How long each configured process type is expected to take.
std::map<std::string, Duration> expected_durations(const ServerConfig& config);

struct HttpApi::Impl {
  const ServerConfig& config;
  Store& store;
  Engine* engine;  // null in a gateway without one
  Dependencies dependencies;
  const TokenSigner& signer;
  RateLimiter& limiter;
  AuditLog& audit;
  Metrics& metrics;
  TokenCache verified;
  Processes processes;
  AuthThrottle auth_throttle;
  ChangeWaiters waiters;
  SSL_CTX* tls = nullptr;
  Dispatcher http;
  std::unique_ptr<HttpFront> front;

  Impl(const ServerConfig& c, Store& s, Engine* e, const TokenSigner& t, RateLimiter& l,
       AuditLog& a, Metrics& m)
      : config(c),
        store(s),
        engine(e),
        signer(t),
        limiter(l),
        audit(a),
        metrics(m),
        processes(s, expected_durations(c),
                  [e] {
                    if (e != nullptr) e->notify();
                  }),
        auth_throttle(c.auth_max_failures, c.auth_failure_window, c.auth_concurrent_checks),
        waiters(c.parked_limit(), c.parked_limit_per_tenant()) {}
  ~Impl();

  // Creates the TLS context when a certificate is configured.
  Status make_tls();
  FrontReply handle(FrontRequest& request);
  std::optional<FrontReply> unknown_method(const FrontRequest& request) const;

  void install();
  void token(const httplib::Request& req, httplib::Response& res);
  std::optional<ClientRecord> authenticate_client(const httplib::Request& req,
                                                  httplib::Response& res);
  void refresh(const httplib::Request& req, httplib::Response& res, const ClientRecord& client);
  void issue_tokens(httplib::Response& res, const ClientRecord& client,
                    const std::vector<std::string>& scopes, const std::string& family,
                    const std::string& refresh_secret);
  std::optional<TokenClaims> authenticate(const httplib::Request& req, httplib::Response& res);
  bool admit(const TokenClaims& claims, httplib::Response& res);
  std::optional<TokenClaims> authorize(const httplib::Request& req, httplib::Response& res);
  Caller caller(const TokenClaims& claims, const httplib::Response& res) const;
  void submit(const httplib::Request& req, httplib::Response& res);
  void retry(const httplib::Request& req, httplib::Response& res);
  void status(const httplib::Request& req, httplib::Response& res);
  void list(const httplib::Request& req, httplib::Response& res);
  bool offers_feed() const { return config.feed_enabled && store.has_change_feed(); }
  void advertise_feed(httplib::Response& res) const;
  void changes(const httplib::Request& req, httplib::Response& res);
  void live(const httplib::Request& req, httplib::Response& res);
  void ready(const httplib::Request& req, httplib::Response& res);
  void metrics_page(const httplib::Request& req, httplib::Response& res);
  void openapi(const httplib::Request& req, httplib::Response& res);

  // One row per route: what the OpenAPI document names, what cpp-httplib matches, and the
  // handler. install() registers these and nothing else, so the document's test (which
  // compares it with routes()) sees every route there is.
  struct Route {
    const char* method;   // "get" or "post"
    const char* path;     // OpenAPI path template
    const char* pattern;  // cpp-httplib's pattern
    void (Impl::*handler)(const httplib::Request&, httplib::Response&);
    bool feed = false;  // only while the feed is offered
  };
  static const std::vector<Route>& route_table();
  std::vector<const Route*> served_routes() const;
  std::string allowed_methods(const std::string& path) const;
  std::vector<std::pair<std::regex, std::string>> route_patterns;  // of the served routes
};

// The gateway's OpenAPI document (docs/openapi/gateway.json, compiled in).
std::string_view gateway_openapi_document();

}  // namespace stargate::server
