// HttpApi: server setup (TLS, limits, hooks), health, metrics, and shared helpers.
#include "server/gateway/http_api.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>

#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include "server/gateway/http_api_impl.hpp"
#include "server/gateway/http_framing.hpp"
#include "server/processes/requests.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"

namespace stargate::server {

thread_local RequestContext request_context;

void note_caller(const std::string& client_id, const std::string& tenant) {
  request_context.client_id = client_id;
  request_context.tenant = tenant;
  log_fields().tenant = tenant;
}

namespace {
// The front's request this thread runs now (set by handle() around routing).
thread_local const FrontRequest* front_request = nullptr;
}  // namespace

bool client_left() {
  return front_request != nullptr && front_request->client_left && front_request->client_left();
}

std::string correlation_id(const httplib::Response& res) {
  return res.get_header_value(kCorrelationHeader);
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump_json(body), kJson);
}

void send_error(httplib::Response& res, const ApiError& error) {
  if (error.retry_after_seconds) {
    res.set_header("Retry-After", std::to_string(*error.retry_after_seconds));
  }
  if (error.code == ErrorCode::kInvalidToken) {
    res.set_header("WWW-Authenticate", "Bearer realm=\"stargate\", error=\"invalid_token\"");
  }
  send_json(res, http_status(error.code),
            error_body(error, format_timestamp(now_utc()), correlation_id(res)));
}

void send_error(httplib::Response& res, ErrorCode code, std::string message) {
  send_error(res, ApiError{code, std::move(message), std::nullopt});
}

void send_oauth_error(httplib::Response& res, int status, const std::string& error,
                      const std::string& description) {
  res.set_header("Cache-Control", "no-store");
  if (status == 401) res.set_header("WWW-Authenticate", "Basic realm=\"stargate\"");
  send_json(res, status, {{"error", error}, {"error_description", description}});
}

std::pair<std::string, std::string> client_credentials(const httplib::Request& req) {
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Basic ", 0) == 0) return basic_credentials(auth).value_or(std::pair{"", ""});
  return {req.get_param_value("client_id"), req.get_param_value("client_secret")};
}

std::map<std::string, Duration> expected_durations(const ServerConfig& config) {
  std::map<std::string, Duration> durations;
  for (const auto& [name, type] : config.process_types)
    durations[name] = type.expected_duration;
  return durations;
}

namespace {

// A TLS server context with the certificate chain and key in these files: TLS 1.2 at least
// (seed §6), no renegotiation or compression. Fails naming the file and the reason.
Expected<SSL_CTX*> new_tls_context(const std::string& cert, const std::string& key) {
  const auto openssl_error = [] {
    char text[256] = "unknown error";
    if (const unsigned long code = ERR_get_error(); code != 0) {
      ERR_error_string_n(code, text, sizeof text);
    }
    return std::string(text);
  };
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0) return fail(key + ": " + std::strerror(errno));
  if ((st.st_mode & 077) != 0) {
    return fail(key + " is readable by group or others; run: chmod 600 " + key);
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return fail("cannot set up the context: " + openssl_error());
  const auto refuse = [ctx](std::string why) -> Expected<SSL_CTX*> {
    SSL_CTX_free(ctx);
    return fail(std::move(why));
  };
  // Writes go out as far as the socket takes them, from a buffer that may move between tries.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return refuse(cert + ": " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return refuse(key + ": " + openssl_error());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) return refuse(key + " does not match " + cert);
  return ctx;
}

}  // namespace

HttpApi::Impl::~Impl() {
  front.reset();
  if (offers_feed()) store.on_change(nullptr);
  if (tls != nullptr) SSL_CTX_free(tls);
}

Status HttpApi::Impl::make_tls() {
  if (config.tls_cert.empty()) return {};
  auto made = new_tls_context(config.tls_cert, config.tls_key);
  if (!made) return Unexpected{made.error()};
  tls = *made;
  return {};
}

// cpp-httplib refuses a method it does not know (QUERY, or any other token) before it
// reads the path, so such requests are answered here: 405 with Allow for a path that some
// route serves, 404 for any other.
std::optional<FrontReply> HttpApi::Impl::unknown_method(const FrontRequest& request) const {
  static const std::set<std::string, std::less<>> kKnown = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI"};
  const std::string_view bytes = request.bytes;
  const auto method_end = bytes.find(' ');
  if (method_end == std::string_view::npos || kKnown.count(bytes.substr(0, method_end)) != 0) {
    return std::nullopt;
  }
  const auto target_end = bytes.find(' ', method_end + 1);
  auto target = bytes.substr(method_end + 1, target_end == std::string_view::npos
                                                 ? std::string_view::npos
                                                 : target_end - method_end - 1);
  target = target.substr(0, target.find('?'));
  const std::string allowed = allowed_methods(std::string(target));
  if (allowed.empty()) return FrontReply{canned_response(404, "No such resource", false), true};
  return FrontReply{canned_response(405, "Method not allowed", false, "Allow: " + allowed + "\r\n"),
                    true};
}

FrontReply HttpApi::Impl::handle(FrontRequest& request) {
  if (auto refused = unknown_method(request)) return std::move(*refused);
  BufferStream stream(request.bytes, {request.remote_ip, request.remote_port, request.local_ip,
                                      request.local_port});
  bool connection_closed = false;
  front_request = &request;
  const bool ok = http.process_request(stream, request.last, connection_closed, {});
  front_request = nullptr;
  std::string out = stream.take_output();
  drop_empty_length_of_304(out);
  return {std::move(out), !ok || connection_closed || request.last};
}

void HttpApi::Impl::install() {
  // Connections are the front's (http_front.cpp): cpp-httplib only parses and routes whole
  // requests, so its own socket handling (a thread held per connection, a read timeout
  // that each byte restarts, SO_REUSEPORT) is not used. What it says in Keep-Alive answers
  // matches the front's limits.
  http.set_payload_max_length(config.max_body_bytes);
  http.set_keep_alive_max_count(config.http.max_requests_per_connection);
  http.set_keep_alive_timeout(
      std::chrono::duration_cast<std::chrono::seconds>(config.http.idle_timeout).count());

  http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    request_context = {std::chrono::steady_clock::now(), "", "", false};
    std::string id = req.get_header_value(kCorrelationHeader);
    if (!is_safe_id(id)) id = new_uuid();
    res.set_header(kCorrelationHeader, id);
    // What this thread logs until the request is answered (the logger below clears it).
    log_fields() = {id, "", "", ""};
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Answers cpp-httplib makes itself (unknown route, 413, 400 on a broken request line)
  // get the same error body as ours.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.has_header(kCorrelationHeader)) res.set_header(kCorrelationHeader, new_uuid());
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        // A path the gateway serves, asked with another method: cpp-httplib answers 404,
        // or 400 for a method it routes nowhere (TRACE, CONNECT); RFC 9110 wants 405 and
        // the methods that are allowed.
        static const std::set<std::string> kRouted = {"GET",   "HEAD",   "POST",   "PUT",
                                                      "PATCH", "DELETE", "OPTIONS"};
        if (res.status == 404 || (res.status == 400 && kRouted.count(req.method) == 0)) {
          if (const auto allowed = allowed_methods(req.path); !allowed.empty()) {
            res.status = 405;
            res.set_header("Allow", allowed);
          } else {
            res.status = 404;
          }
        }
        ErrorCode code = ErrorCode::kInvalidRequest;
        std::string message = "Bad request";
        switch (res.status) {
          case 404:
            code = ErrorCode::kNotFound;
            message = "No such resource";
            break;
          case 405:
            code = ErrorCode::kMethodNotAllowed;
            message = "Method not allowed";
            break;
          case 413:
            code = ErrorCode::kPayloadTooLarge;
            message = "Request body too large";
            break;
          case 414:
            message = "Request URI too long";
            break;
          default:
            if (res.status >= 500) {
              code = ErrorCode::kInternalError;
              message = "Internal error";
            }
            break;
        }
        const int status = res.status;
        send_error(res, code, message);
        res.status = status;
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("{} {}: unhandled exception: {} [{}]", req.method, req.path, what,
                      correlation_id(res));
        send_error(res, ErrorCode::kInternalError, "Internal error");
      });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const auto took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                                request_context.start)
                          .count();
    spdlog::info("{} {} {} {:.1f}ms [{}]", req.method, req.path.substr(0, 200), res.status, took,
                 correlation_id(res));
    metrics.request(req.method, route_label(req.path), res.status, took / 1000);
    nlohmann::json fields = {{"method", req.method},
                             {"route", req.path.substr(0, 200)},
                             {"status", res.status},
                             {"latencyMs", std::round(took * 10) / 10},
                             {"correlationId", correlation_id(res)},
                             {"remoteAddr", req.remote_addr}};
    if (!request_context.client_id.empty()) fields["client"] = request_context.client_id;
    if (!request_context.tenant.empty()) fields["tenant"] = request_context.tenant;
    if (request_context.previous_secret) fields["secret"] = "previous";
    audit.record({now_utc(), "request", std::move(fields)});
    log_fields() = {};
  });

  for (const Route* route : served_routes()) {
    route_patterns.emplace_back(std::regex(route->pattern), route->method);
    const auto handle = [this, handler = route->handler](const httplib::Request& req,
                                                         httplib::Response& res) {
      (this->*handler)(req, res);
    };
    if (std::string_view(route->method) == "post") {
      http.Post(route->pattern, handle);
    } else {
      http.Get(route->pattern, handle);
    }
  }
  if (offers_feed()) {
    store.on_change([this](const std::string& tenant) { waiters.notify(tenant); });
  }
}

// cpp-httplib tries the patterns of a method in this order: the feed's path comes before
// the process id's.
const std::vector<HttpApi::Impl::Route>& HttpApi::Impl::route_table() {
  static const std::vector<Route> table = {
      {"post", "/oauth/token", "/oauth/token", &Impl::token},
      {"post", "/api/stargate/processes", "/api/stargate/processes", &Impl::submit},
      {"get", "/api/stargate/processes", "/api/stargate/processes", &Impl::list},
      {"get", kChangesPath, kChangesPath, &Impl::changes, true},
      {"get", "/api/stargate/openapi.json", "/api/stargate/openapi.json", &Impl::openapi},
      {"get", "/api/stargate/processes/{processId}", R"(/api/stargate/processes/([^/]+))",
       &Impl::status},
      {"post", "/api/stargate/processes/{processId}/retry",
       R"(/api/stargate/processes/([^/]+)/retry)", &Impl::retry},
      {"get", "/health/live", "/health/live", &Impl::live},
      {"get", "/health/ready", "/health/ready", &Impl::ready},
      {"get", "/metrics", "/metrics", &Impl::metrics_page},
  };
  return table;
}

std::vector<const HttpApi::Impl::Route*> HttpApi::Impl::served_routes() const {
  std::vector<const Route*> served;
  for (const auto& route : route_table()) {
    if (!route.feed || offers_feed()) served.push_back(&route);
  }
  return served;
}

// "GET, HEAD" or "POST" for a path some route serves; empty for any other.
std::string HttpApi::Impl::allowed_methods(const std::string& path) const {
  std::set<std::string> methods;
  for (const auto& [pattern, method] : route_patterns) {
    if (!std::regex_match(path, pattern)) continue;
    if (method == "get") {
      methods.insert("GET");
      methods.insert("HEAD");
    } else {
      methods.insert("POST");
    }
  }
  std::string allowed;
  for (const auto& method : methods)
    allowed += (allowed.empty() ? "" : ", ") + method;
  return allowed;
}

void HttpApi::Impl::live(const httplib::Request& /*req*/, httplib::Response& res) {
  send_json(res, 200, {{"status", "ok"}});
}

// The document is the same for every caller and holds no secret: no token needed.
void HttpApi::Impl::openapi(const httplib::Request& /*req*/, httplib::Response& res) {
  res.set_content(std::string(gateway_openapi_document()), kJson);
}

std::vector<HttpApi::Route> HttpApi::routes() const {
  std::vector<Route> out;
  for (const auto* route : impl_->served_routes())
    out.push_back({route->method, route->path});
  return out;
}

void HttpApi::Impl::ready(const httplib::Request& /*req*/, httplib::Response& res) {
  nlohmann::json failing = nlohmann::json::array();
  nlohmann::json details = nlohmann::json::object();
  if (auto writable = store.check_writable(); !writable) {
    spdlog::warn("readiness: store not writable: {}", writable.error());
    failing.push_back(store.readiness_name());
  }
  for (const auto& [name, probe] : dependencies) {
    if (auto answered = probe(); !answered) {
      spdlog::warn("readiness: {}: {}", name, answered.error());
      failing.push_back(name);
    }
  }
  if (engine != nullptr) {
    const auto health = engine->health();
    if (!engine->running() || health.stuck > 0 || health.unsaved > 0) {
      failing.push_back("engine");
      if (health.stuck > 0) details["stuckWorkers"] = health.stuck;
      if (health.unsaved > 0) details["unsavedOutcomes"] = health.unsaved;
    }
  }
  if (auto oldest = store.oldest_queued(); oldest && *oldest) {
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now_utc() - **oldest);
    if (waited > config.max_queue_wait) {
      failing.push_back("queue");
      details["oldestQueuedSeconds"] = waited.count();
    }
  }
  if (failing.empty()) {
    send_json(res, 200, {{"status", "ready"}});
  } else {
    nlohmann::json body = {{"status", "not ready"}, {"failing", failing}};
    if (!details.empty()) body["details"] = details;
    send_json(res, 503, body);
  }
}

void HttpApi::Impl::metrics_page(const httplib::Request& req, httplib::Response& res) {
  const auto& allowed = config.metrics_allow;
  if (std::find(allowed.begin(), allowed.end(), req.remote_addr) == allowed.end()) {
    send_error(res, ErrorCode::kInsufficientPermissions,
               "Metrics are not served to this address (see [server] metrics_allow)");
    return;
  }
  std::string gauges;
  if (auto counts = store.process_counts()) {
    gauges += "# HELP stargate_processes Processes in the store, by state.\n";
    gauges += "# TYPE stargate_processes gauge\n";
    for (const char* state : {"accepted", "processing", "completed", "failed"}) {
      const auto it = counts->by_status.find(state);
      gauges += std::string("stargate_processes{state=\"") + state + "\"} " +
                std::to_string(it == counts->by_status.end() ? 0 : it->second) + "\n";
    }
    gauges += "# HELP stargate_queue_depth Accepted processes waiting for a worker.\n";
    gauges += "# TYPE stargate_queue_depth gauge\n";
    gauges += "stargate_queue_depth " + std::to_string(counts->queued) + "\n";
  }
  gauges += "# HELP stargate_audit_records_lost_total Audit records that could not be written.\n";
  gauges += "# TYPE stargate_audit_records_lost_total counter\n";
  gauges += "stargate_audit_records_lost_total " + std::to_string(audit.lost()) + "\n";
  const auto gauge = [&](const char* name, const char* help, double value) {
    gauges += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, value);
  };
  gauge("stargate_audit_records_pending",
        "Request audit records queued for the store, not yet written.",
        static_cast<double>(audit.pending()));
  if (engine != nullptr) {
    const auto health = engine->health();
    gauge("stargate_engine_workers_busy", "Engine workers running a handler now.",
          static_cast<double>(health.busy));
    gauge("stargate_engine_workers_stuck",
          "Engine workers running one process longer than [engine] stuck_after.",
          static_cast<double>(health.stuck));
    gauge("stargate_engine_outcomes_unsaved",
          "Handler outcomes the store refused, kept in memory until it takes them.",
          static_cast<double>(health.unsaved));
  }
  double oldest_seconds = 0;
  if (auto oldest = store.oldest_queued(); oldest && *oldest) {
    oldest_seconds = std::chrono::duration<double>(now_utc() - **oldest).count();
  }
  gauge("stargate_queue_oldest_seconds",
        "How long the process at the head of the work queue has waited.", oldest_seconds);
  if (front) {
    const FrontStats http_stats = front->stats();
    gauges += "# HELP stargate_http_connections Open client connections, by what they do.\n";
    gauges += "# TYPE stargate_http_connections gauge\n";
    for (const auto& [state, value] : {std::pair{"reading", http_stats.reading},
                                       {"idle", http_stats.idle},
                                       {"busy", http_stats.busy},
                                       {"writing", http_stats.writing}}) {
      gauges += fmt::format("stargate_http_connections{{state=\"{}\"}} {}\n", state, value);
    }
    gauges += "# HELP stargate_http_connections_accepted_total Connections accepted.\n";
    gauges += "# TYPE stargate_http_connections_accepted_total counter\n";
    gauges += fmt::format("stargate_http_connections_accepted_total {}\n", http_stats.accepted);
    gauges +=
        "# HELP stargate_http_connection_events_total Connections the front ended or refused "
        "itself, by reason.\n";
    gauges += "# TYPE stargate_http_connection_events_total counter\n";
    for (int i = 0; i < static_cast<int>(FrontEvent::kCount); ++i) {
      gauges += fmt::format("stargate_http_connection_events_total{{event=\"{}\"}} {}\n",
                            front_event_name(static_cast<FrontEvent>(i)), http_stats.events[i]);
    }
  }
  if (offers_feed()) {
    const ChangeWaiterStats feed = waiters.stats();
    gauge("stargate_feed_parked", "Change-feed requests waiting for a change now.",
          static_cast<double>(feed.parked));
    gauge("stargate_feed_parked_max", "How many change-feed requests may wait at once.",
          static_cast<double>(feed.max_parked));
    gauges +=
        "# HELP stargate_feed_wakeups_total Waiting change-feed requests woken by a change.\n";
    gauges += "# TYPE stargate_feed_wakeups_total counter\n";
    gauges += fmt::format("stargate_feed_wakeups_total {}\n", feed.wakeups);
    gauges += "# HELP stargate_feed_answers_total Change-feed answers, by why they were sent.\n";
    gauges += "# TYPE stargate_feed_answers_total counter\n";
    for (int i = 0; i < static_cast<int>(FeedAnswer::kCount); ++i) {
      gauges += fmt::format("stargate_feed_answers_total{{reason=\"{}\"}} {}\n",
                            feed_answer_name(static_cast<FeedAnswer>(i)), feed.answers[i]);
    }
  }
  if (engine != nullptr) {
    gauges += "# HELP stargate_engine_up Whether the engine's workers are running.\n";
    gauges += "# TYPE stargate_engine_up gauge\n";
    gauges += std::string("stargate_engine_up ") + (engine->running() ? "1" : "0") + "\n";
  }
  res.set_content(metrics.render(gauges), "text/plain; version=0.0.4; charset=utf-8");
}

HttpApi::HttpApi(const ServerConfig& config, Store& store, Engine* engine,
                 const TokenSigner& signer, RateLimiter& limiter, AuditLog& audit, Metrics& metrics,
                 Dependencies dependencies)
    : impl_(std::make_unique<Impl>(config, store, engine, signer, limiter, audit, metrics)) {
  impl_->dependencies = std::move(dependencies);
  impl_->install();
}

HttpApi::~HttpApi() = default;

Expected<int> HttpApi::bind(const std::string& host, int port) {
  if (auto made = impl_->make_tls(); !made) return fail("TLS: " + made.error());
  impl_->front = std::make_unique<HttpFront>(
      impl_->config.http,
      [impl = impl_.get()](FrontRequest& request) { return impl->handle(request); }, impl_->tls);
  // The listening backlog is SOMAXCONN (cpp-httplib's is 5: a burst of daemons connecting
  // after a restart had SYNs dropped).
  return impl_->front->bind(host, port);
}

void HttpApi::serve() {
  if (impl_->front) impl_->front->serve();
}

void HttpApi::stop() {
  impl_->waiters.stop();  // parked requests answer now, so that the front can finish them
  if (impl_->front) impl_->front->stop();
}

void HttpApi::share_auth_failures(std::shared_ptr<SharedFailures> shared) {
  impl_->auth_throttle.share(std::move(shared));
}

void HttpApi::reload_process_types(const ServerConfig& config) {
  impl_->processes.set_expected_durations(expected_durations(config));
}

Status HttpApi::reload_tls(const std::string& cert, const std::string& key) {
  if (impl_->tls == nullptr || !impl_->front) return fail("TLS: not in use; needs a restart");
  auto made = new_tls_context(cert, key);
  if (!made) return fail("TLS: " + made.error());
  // Only this thread and the destructor touch impl_->tls.
  SSL_CTX_free(impl_->front->set_tls(*made));
  impl_->tls = *made;
  return {};
}

bool HttpApi::uses_tls() const {
  return !impl_->config.tls_cert.empty();
}

}  // namespace stargate::server
