// Routes of the gateway API.
#include "server/http_api.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include "server/digest.hpp"
#include "shared/errors.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"

namespace stargate::server {
namespace {

constexpr const char* kCorrelationHeader = "X-Correlation-ID";
constexpr const char* kJson = "application/json";

// What the audit record of the request being answered needs. cpp-httplib runs the
// pre-routing handler, the route and the logger of one request on one thread.
struct RequestContext {
  std::chrono::steady_clock::time_point start;
  std::string client_id;
  std::string tenant;
};
thread_local RequestContext request_context;

// The correlation id of this exchange: set on the response before routing.
std::string correlation_id(const httplib::Response& res) {
  return res.get_header_value(kCorrelationHeader);
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), kJson);
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

// RFC 6749 §5.2 error answer of the token endpoint.
void send_oauth_error(httplib::Response& res, int status, const std::string& error,
                      const std::string& description) {
  res.set_header("Cache-Control", "no-store");
  if (status == 401) res.set_header("WWW-Authenticate", "Basic realm=\"stargate\"");
  send_json(res, status, {{"error", error}, {"error_description", description}});
}

// Client credentials from HTTP Basic (RFC 6749 §2.3.1) or the form body.
std::pair<std::string, std::string> client_credentials(const httplib::Request& req) {
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Basic ", 0) == 0 && auth.size() < 1024) {
    std::string decoded(auth.size(), '\0');
    std::size_t length = 0;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(),
                          auth.data() + 6, auth.size() - 6, nullptr, &length, nullptr,
                          sodium_base64_VARIANT_ORIGINAL) == 0) {
      decoded.resize(length);
      const auto colon = decoded.find(':');
      if (colon != std::string::npos) {
        // RFC 6749 §2.3.1: both parts are form-urlencoded before encoding.
        return {httplib::detail::decode_url(decoded.substr(0, colon), true),
                httplib::detail::decode_url(decoded.substr(colon + 1), true)};
      }
    }
    return {};
  }
  return {req.get_param_value("client_id"), req.get_param_value("client_secret")};
}

bool has_scope(const TokenClaims& claims, const std::string& process_type) {
  const auto wanted = scope_for(process_type);
  return std::find(claims.scopes.begin(), claims.scopes.end(), wanted) != claims.scopes.end();
}

}  // namespace

struct HttpApi::Impl {
  const ServerConfig& config;
  Store& store;
  Engine& engine;
  const TokenSigner& signer;
  RateLimiter& limiter;
  AuditLog& audit;
  Metrics& metrics;
  std::string tls_error;  // why the TLS context could not be set up
  std::unique_ptr<httplib::Server> server;
  httplib::Server& http;

  Impl(const ServerConfig& c, Store& s, Engine& e, const TokenSigner& t, RateLimiter& l,
       AuditLog& a, Metrics& m)
      : config(c),
        store(s),
        engine(e),
        signer(t),
        limiter(l),
        audit(a),
        metrics(m),
        server(make_server()),
        http(*server) {}

  std::unique_ptr<httplib::Server> make_server();
  bool setup_tls(SSL_CTX& ctx);

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
  void submit(const httplib::Request& req, httplib::Response& res);
  void retry(const httplib::Request& req, httplib::Response& res);
  void status(const httplib::Request& req, httplib::Response& res);
  void list(const httplib::Request& req, httplib::Response& res);
  void ready(httplib::Response& res);
  void metrics_page(const httplib::Request& req, httplib::Response& res);
};

std::unique_ptr<httplib::Server> HttpApi::Impl::make_server() {
  if (config.tls_cert.empty()) return std::make_unique<httplib::Server>();
  return std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) { return setup_tls(ctx); });
}

bool HttpApi::Impl::setup_tls(SSL_CTX& ctx) {
  const auto openssl_error = [] {
    char text[256] = "unknown error";
    if (const unsigned long code = ERR_get_error(); code != 0) {
      ERR_error_string_n(code, text, sizeof text);
    }
    return std::string(text);
  };
  struct stat st {};
  if (::stat(config.tls_key.c_str(), &st) != 0) {
    tls_error = config.tls_key + ": " + std::strerror(errno);
    return false;
  }
  if ((st.st_mode & 077) != 0) {
    tls_error =
        config.tls_key + " is readable by group or others; run: chmod 600 " + config.tls_key;
    return false;
  }
  // TLS 1.2 at least (seed §6); no renegotiation or compression.
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      &ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(&ctx, config.tls_cert.c_str()) != 1) {
    tls_error = config.tls_cert + ": " + openssl_error();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(&ctx, config.tls_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    tls_error = config.tls_key + ": " + openssl_error();
    return false;
  }
  if (SSL_CTX_check_private_key(&ctx) != 1) {
    tls_error = config.tls_key + " does not match " + config.tls_cert;
    return false;
  }
  return true;
}

void HttpApi::Impl::install() {
  http.new_task_queue = [threads = config.http_threads] {
    return new httplib::ThreadPool(threads);
  };
  http.set_tcp_nodelay(true);
  http.set_payload_max_length(config.max_body_bytes);
  http.set_read_timeout(std::chrono::seconds(10));
  http.set_write_timeout(std::chrono::seconds(10));

  http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    request_context = {std::chrono::steady_clock::now(), "", ""};
    std::string id = req.get_header_value(kCorrelationHeader);
    if (!is_safe_id(id)) id = new_uuid();
    res.set_header(kCorrelationHeader, id);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Answers cpp-httplib makes itself (unknown route, 413, 400 on a broken request line)
  // get the same error body as ours.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.has_header(kCorrelationHeader)) res.set_header(kCorrelationHeader, new_uuid());
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
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
    audit.record({now_utc(), "request", std::move(fields)});
  });

  http.Post("/oauth/token", [this](const auto& req, auto& res) { token(req, res); });
  http.Post("/api/stargate/processes", [this](const auto& req, auto& res) { submit(req, res); });
  http.Get("/api/stargate/processes", [this](const auto& req, auto& res) { list(req, res); });
  http.Get(R"(/api/stargate/processes/([^/]+))",
           [this](const auto& req, auto& res) { status(req, res); });
  http.Post(R"(/api/stargate/processes/([^/]+)/retry)",
            [this](const auto& req, auto& res) { retry(req, res); });
  http.Get("/health/live", [](const auto&, auto& res) { send_json(res, 200, {{"status", "ok"}}); });
  http.Get("/health/ready", [this](const auto&, auto& res) { ready(res); });
  http.Get("/metrics", [this](const auto& req, auto& res) { metrics_page(req, res); });
}

void HttpApi::Impl::token(const httplib::Request& req, httplib::Response& res) {
  if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) != 0) {
    send_oauth_error(res, 400, "invalid_request",
                     "Content-Type must be application/x-www-form-urlencoded");
    return;
  }
  const std::string grant = req.get_param_value("grant_type");
  if (grant.empty()) {
    send_oauth_error(res, 400, "invalid_request", "Missing grant_type");
    return;
  }
  if (grant != "client_credentials" && grant != "refresh_token") {
    send_oauth_error(res, 400, "unsupported_grant_type",
                     "Supported: client_credentials, refresh_token");
    return;
  }
  if (!signer.can_issue()) {
    send_oauth_error(res, 400, "unsupported_grant_type",
                     "This gateway only verifies tokens; ask the one that issues them");
    return;
  }
  auto client = authenticate_client(req, res);
  if (!client) return;
  if (grant == "refresh_token") {
    refresh(req, res, *client);
    return;
  }
  std::vector<std::string> granted;
  for (const auto& type : client->process_types)
    granted.push_back(scope_for(type));
  std::vector<std::string> scopes = granted;
  if (req.has_param("scope")) {
    scopes = split_scopes(req.get_param_value("scope"));
    for (const auto& scope : scopes) {
      if (std::find(granted.begin(), granted.end(), scope) == granted.end()) {
        send_oauth_error(res, 400, "invalid_scope",
                         "Scope not granted to this client: " + scope.substr(0, 80));
        return;
      }
    }
  }
  const auto now = now_utc();
  RefreshToken refresh_token{"", client->client_id, new_uuid(), join_scopes(scopes),
                             now + config.refresh_token_lifetime};
  const std::string refresh_secret = new_refresh_token();
  refresh_token.hash = hash_token(refresh_secret);
  if (auto saved = store.add_refresh_token(refresh_token); !saved) {
    spdlog::error("token: {} [{}]", saved.error(), correlation_id(res));
    send_oauth_error(res, 503, "temporarily_unavailable", "Store unavailable");
    return;
  }
  issue_tokens(res, *client, scopes, refresh_token.family, refresh_secret);
}

std::optional<ClientRecord> HttpApi::Impl::authenticate_client(const httplib::Request& req,
                                                               httplib::Response& res) {
  const auto [client_id, secret] = client_credentials(req);
  if (client_id.empty() || secret.empty()) {
    send_oauth_error(res, 401, "invalid_client", "Client authentication failed");
    return std::nullopt;
  }
  auto client = store.find_client(client_id);
  if (!client) {
    spdlog::error("token: {}", client.error());
    send_oauth_error(res, 503, "temporarily_unavailable", "Store unavailable");
    return std::nullopt;
  }
  // The same answer for an unknown client, a revoked one and a wrong secret.
  if (!client->has_value() || (*client)->revoked ||
      !verify_secret((*client)->secret_hash, secret)) {
    spdlog::warn("token: client authentication failed for '{}' [{}]", client_id.substr(0, 64),
                 correlation_id(res));
    send_oauth_error(res, 401, "invalid_client", "Client authentication failed");
    return std::nullopt;
  }
  request_context.client_id = (*client)->client_id;
  request_context.tenant = (*client)->tenant;
  return std::move(**client);
}

void HttpApi::Impl::refresh(const httplib::Request& req, httplib::Response& res,
                            const ClientRecord& client) {
  const std::string presented = req.get_param_value("refresh_token");
  if (presented.empty() || presented.size() > 256) {
    send_oauth_error(res, 400, "invalid_request", "Missing refresh_token");
    return;
  }
  const auto now = now_utc();
  const std::string next = new_refresh_token();
  auto rotated = store.rotate_refresh_token(hash_token(presented), hash_token(next),
                                            now + config.refresh_token_lifetime, now);
  if (!rotated) {
    spdlog::error("token: {} [{}]", rotated.error(), correlation_id(res));
    send_oauth_error(res, 503, "temporarily_unavailable", "Store unavailable");
    return;
  }
  if (rotated->kind == RefreshResult::Kind::kReused) {
    spdlog::warn("token: refresh token reused by {}; its family is revoked [{}]", client.client_id,
                 correlation_id(res));
  }
  if (rotated->kind != RefreshResult::Kind::kRotated ||
      rotated->client.client_id != client.client_id) {
    send_oauth_error(res, 400, "invalid_grant", "Refresh token invalid, expired or revoked");
    return;
  }
  issue_tokens(res, client, split_scopes(rotated->next.scopes), rotated->next.family, next);
}

void HttpApi::Impl::issue_tokens(httplib::Response& res, const ClientRecord& client,
                                 const std::vector<std::string>& scopes, const std::string& family,
                                 const std::string& refresh_secret) {
  const auto now = now_utc();
  TokenClaims claims{client.client_id, client.tenant, scopes, now, now + config.token_lifetime,
                     new_uuid(),       family};
  auto token = signer.issue(claims);
  if (!token) {
    spdlog::error("token: {}", token.error());
    send_oauth_error(res, 500, "server_error", "Cannot issue token");
    return;
  }
  res.set_header("Cache-Control", "no-store");
  res.set_header("Pragma", "no-cache");
  const auto lifetime = std::chrono::duration_cast<std::chrono::seconds>(config.token_lifetime);
  send_json(res, 200,
            {{"access_token", *token},
             {"token_type", "Bearer"},
             {"expires_in", lifetime.count()},
             {"refresh_token", refresh_secret},
             {"scope", join_scopes(scopes)}});
  spdlog::info("token: issued to {} (tenant {}) [{}]", client.client_id, client.tenant,
               correlation_id(res));
}

std::optional<TokenClaims> HttpApi::Impl::authenticate(const httplib::Request& req,
                                                       httplib::Response& res) {
  const std::string header = req.get_header_value("Authorization");
  if (header.rfind("Bearer ", 0) != 0) {
    send_error(res, ErrorCode::kInvalidToken, "Missing bearer token");
    return std::nullopt;
  }
  auto claims = signer.verify(std::string_view(header).substr(7), now_utc());
  if (!claims) {
    spdlog::info("auth: token refused: {} [{}]", claims.error(), correlation_id(res));
    send_error(res, ErrorCode::kInvalidToken, "Token expired or invalid");
    return std::nullopt;
  }
  // Tokens are stateless, but a revoked client or token family stops working at once.
  auto usable = store.token_usable(claims->client_id, claims->family);
  if (!usable) {
    spdlog::error("auth: {} [{}]", usable.error(), correlation_id(res));
    send_error(res, {ErrorCode::kServiceUnavailable, "Store unavailable", 5});
    return std::nullopt;
  }
  if (!*usable) {
    spdlog::info("auth: token of revoked client {} refused [{}]", claims->client_id,
                 correlation_id(res));
    send_error(res, ErrorCode::kInvalidToken, "Token expired or invalid");
    return std::nullopt;
  }
  request_context.client_id = claims->client_id;
  request_context.tenant = claims->tenant;
  return *claims;
}

bool HttpApi::Impl::admit(const TokenClaims& claims, httplib::Response& res) {
  const auto decision = limiter.take(claims.tenant, now_utc());
  res.set_header("X-RateLimit-Limit", std::to_string(decision.limit));
  res.set_header("X-RateLimit-Remaining", std::to_string(decision.remaining));
  res.set_header("X-RateLimit-Reset", std::to_string(decision.reset_seconds));
  if (decision.allowed) return true;
  spdlog::info("rate limit: tenant {} refused [{}]", claims.tenant, correlation_id(res));
  metrics.rate_limited(claims.tenant);
  send_error(res, {ErrorCode::kRateLimitExceeded,
                   "Request rate limit exceeded (" + std::to_string(decision.limit) + " req/min)",
                   static_cast<int>(decision.retry_after_seconds)});
  return false;
}

std::optional<TokenClaims> HttpApi::Impl::authorize(const httplib::Request& req,
                                                    httplib::Response& res) {
  auto claims = authenticate(req, res);
  if (!claims || !admit(*claims, res)) return std::nullopt;
  return claims;
}

void HttpApi::Impl::submit(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind(kJson, 0) != 0) {
    send_error(res, ErrorCode::kUnsupportedMediaType, "Content-Type must be application/json");
    return;
  }
  auto body = parse_json(req.body, {config.max_body_bytes, 32});
  if (!body) {
    const bool too_large = body.error().kind == JsonError::Kind::kTooLarge;
    send_error(res, too_large ? ErrorCode::kPayloadTooLarge : ErrorCode::kInvalidRequest,
               "Malformed JSON: " + body.error().message);
    return;
  }
  if (auto long_string = find_long_string(*body, config.max_string_bytes)) {
    send_error(res, ErrorCode::kInvalidRequest,
               "String at " + *long_string + " is longer than " +
                   std::to_string(config.max_string_bytes) + " bytes");
    return;
  }
  auto request = parse_submit_request(*body);
  if (!request) {
    send_error(res, ErrorCode::kInvalidRequest, request.error());
    return;
  }
  const std::string header_key = req.get_header_value("Idempotency-Key");
  if (!header_key.empty()) {
    if (!is_safe_id(header_key)) {
      send_error(res, ErrorCode::kInvalidRequest,
                 "Idempotency-Key must be 1-128 characters of letters, digits and -_.:");
      return;
    }
    if (!request->idempotency_key.empty() && request->idempotency_key != header_key) {
      send_error(res, ErrorCode::kInvalidRequest,
                 "idempotencyKey and the Idempotency-Key header differ");
      return;
    }
    request->idempotency_key = header_key;
  }
  if (!has_scope(*claims, request->process_type)) {
    send_error(res, ErrorCode::kInsufficientPermissions, "ProcessType not authorized");
    return;
  }
  const auto type_config = config.process_types.find(request->process_type);
  if (type_config == config.process_types.end()) {
    send_error(res, ErrorCode::kInvalidRequest, "Unknown processType: " + request->process_type);
    return;
  }
  NewProcess process;
  process.tenant = claims->tenant;
  process.client_id = claims->client_id;
  process.now = now_utc();
  process.estimated_completion = process.now + type_config->second.expected_duration;
  {
    SubmitRequest canonical = *request;
    canonical.idempotency_key.clear();
    process.request_hash = sha256_hex(to_json(canonical).dump());
  }
  process.request = std::move(*request);
  auto created = store.create_process(process);
  if (!created) {
    spdlog::error("submit: {} [{}]", created.error(), correlation_id(res));
    send_error(res, {ErrorCode::kServiceUnavailable, "Store unavailable", 5});
    return;
  }
  if (created->kind == CreateResult::Kind::kKeyReused) {
    send_error(res, ErrorCode::kIdempotencyKeyReused,
               "Idempotency key already used with a different request");
    return;
  }
  const auto& view = created->process.view;
  if (created->kind == CreateResult::Kind::kCreated) {
    engine.notify();
    spdlog::info("process {}: accepted {} for tenant {} (client process {}) [{}]", view.process_id,
                 view.process_type, claims->tenant, view.client_process_id, correlation_id(res));
  }
  Accepted accepted{view.process_id, view.client_process_id, view.process_type, view.created_at,
                    view.estimated_completion};
  res.set_header("Location", status_url(view.process_id));
  send_json(res, 202, to_json(accepted));
}

void HttpApi::Impl::status(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  const std::string id = req.matches[1];
  if (!is_process_id(id)) {
    send_error(res, ErrorCode::kNotFound, "Process not found");
    return;
  }
  auto record = store.get_process(claims->tenant, id);
  if (!record) {
    spdlog::error("status: {} [{}]", record.error(), correlation_id(res));
    send_error(res, {ErrorCode::kServiceUnavailable, "Store unavailable", 5});
    return;
  }
  if (!record->has_value()) {
    send_error(res, ErrorCode::kNotFound, "Process not found");
    return;
  }
  const auto& view = (*record)->view;
  if (!has_scope(*claims, view.process_type)) {
    send_error(res, ErrorCode::kInsufficientPermissions, "ProcessType not authorized");
    return;
  }
  if (!is_terminal(view.status)) {
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(config.status_retry_after);
    res.set_header("Retry-After", std::to_string(seconds.count()));
  }
  send_json(res, 200, to_json(view));
}

void HttpApi::Impl::retry(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  const std::string id = req.matches[1];
  if (!is_process_id(id)) {
    send_error(res, ErrorCode::kNotFound, "Process not found");
    return;
  }
  auto record = store.get_process(claims->tenant, id);
  if (record && record->has_value() && !has_scope(*claims, (*record)->view.process_type)) {
    send_error(res, ErrorCode::kInsufficientPermissions, "ProcessType not authorized");
    return;
  }
  auto outcome = store.retry_process(claims->tenant, id, now_utc());
  if (!record || !outcome) {
    spdlog::error("retry: {} [{}]", !record ? record.error() : outcome.error(),
                  correlation_id(res));
    send_error(res, {ErrorCode::kServiceUnavailable, "Store unavailable", 5});
    return;
  }
  switch (*outcome) {
    case Store::RetryOutcome::kNotFound:
      send_error(res, ErrorCode::kNotFound, "Process not found");
      return;
    case Store::RetryOutcome::kNotRetryable:
      send_error(res, ErrorCode::kNotRetryable,
                 "Process " + id + " is " + std::string(to_string((*record)->view.status)) +
                     (((*record)->view.status == ProcessStatus::kFailed) ? " and not retryable"
                                                                         : ", not failed"));
      return;
    case Store::RetryOutcome::kRetried:
      break;
  }
  engine.notify();
  auto retried = store.get_process(claims->tenant, id);
  if (!retried || !retried->has_value()) {
    send_error(res, {ErrorCode::kServiceUnavailable, "Store unavailable", 5});
    return;
  }
  const auto& view = (*retried)->view;
  spdlog::info("process {}: retry requested, attempt {} [{}]", id, (*retried)->attempt,
               correlation_id(res));
  Accepted accepted{view.process_id, view.client_process_id, view.process_type, view.created_at,
                    view.estimated_completion};
  res.set_header("Location", status_url(view.process_id));
  send_json(res, 202, to_json(accepted));
}

void HttpApi::Impl::list(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  ListQuery query;
  query.tenant = claims->tenant;
  if (req.has_param("status")) {
    query.status = parse_process_status(req.get_param_value("status"));
    if (!query.status) {
      send_error(res, ErrorCode::kInvalidRequest,
                 "Parameter 'status' must be accepted, processing, completed or failed");
      return;
    }
  }
  query.process_type = req.get_param_value("processType");
  if (!query.process_type.empty() && !is_process_type_name(query.process_type)) {
    send_error(res, ErrorCode::kInvalidRequest, "Parameter 'processType' is not a process type");
    return;
  }
  if (req.has_param("limit")) {
    const std::string limit = req.get_param_value("limit");
    if (limit.empty() || limit.size() > 3 ||
        limit.find_first_not_of("0123456789") != std::string::npos || std::stoi(limit) < 1 ||
        std::stoi(limit) > 100) {
      send_error(res, ErrorCode::kInvalidRequest, "Parameter 'limit' must be 1-100");
      return;
    }
    query.limit = static_cast<std::size_t>(std::stoi(limit));
  }
  query.cursor = req.get_param_value("cursor");
  if (!query.cursor.empty() && !is_process_id(query.cursor)) {
    send_error(res, ErrorCode::kInvalidRequest, "Parameter 'cursor' is not a process id");
    return;
  }
  auto records = store.list_processes(query);
  if (!records) {
    spdlog::error("list: {} [{}]", records.error(), correlation_id(res));
    send_error(res, {ErrorCode::kServiceUnavailable, "Store unavailable", 5});
    return;
  }
  nlohmann::json items = nlohmann::json::array();
  for (const auto& record : *records) {
    if (has_scope(*claims, record.view.process_type)) items.push_back(to_json(record.view));
  }
  nlohmann::json body = {{"processes", items}};
  if (records->size() == query.limit) body["nextCursor"] = records->back().view.process_id;
  send_json(res, 200, body);
}

void HttpApi::Impl::ready(httplib::Response& res) {
  nlohmann::json failing = nlohmann::json::array();
  if (auto probe = store.find_client("readiness-probe"); !probe) failing.push_back("store");
  if (!engine.running()) failing.push_back("engine");
  if (failing.empty()) {
    send_json(res, 200, {{"status", "ready"}});
  } else {
    send_json(res, 503, {{"status", "not ready"}, {"failing", failing}});
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
  gauges += "# HELP stargate_engine_up Whether the engine's workers are running.\n";
  gauges += "# TYPE stargate_engine_up gauge\n";
  gauges += std::string("stargate_engine_up ") + (engine.running() ? "1" : "0") + "\n";
  res.set_content(metrics.render(gauges), "text/plain; version=0.0.4; charset=utf-8");
}

HttpApi::HttpApi(const ServerConfig& config, Store& store, Engine& engine,
                 const TokenSigner& signer, RateLimiter& limiter, AuditLog& audit, Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, store, engine, signer, limiter, audit, metrics)) {
  impl_->install();
}

HttpApi::~HttpApi() = default;

Expected<int> HttpApi::bind(const std::string& host, int port) {
  if (!impl_->http.is_valid()) {
    return fail("TLS: " + (impl_->tls_error.empty() ? std::string("cannot set up the context")
                                                    : impl_->tls_error));
  }
  if (port == 0) {
    const int bound = impl_->http.bind_to_any_port(host);
    if (bound <= 0) return fail("cannot listen on " + host + ": no free port");
    return bound;
  }
  if (!impl_->http.bind_to_port(host, port)) {
    return fail("cannot listen on " + host + ":" + std::to_string(port) +
                " (address in use or not available)");
  }
  return port;
}

void HttpApi::serve() {
  impl_->http.listen_after_bind();
}

void HttpApi::stop() {
  impl_->http.stop();
}

bool HttpApi::uses_tls() const {
  return !impl_->config.tls_cert.empty();
}

}  // namespace stargate::server
