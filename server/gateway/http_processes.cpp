// The process API: authentication and rate limiting of API requests, submit, status,
// retry and list.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "server/gateway/http_api_impl.hpp"
#include "server/processes/requests.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"

namespace stargate::server {
namespace {

// 202 Accepted for a submitted or retried process, with its Location.
void send_accepted(httplib::Response& res, const ProcessView& view) {
  Accepted accepted{view.process_id, view.client_process_id, view.process_type, view.created_at,
                    view.estimated_completion};
  res.set_header("Location", status_url(view.process_id));
  send_json(res, 202, to_json(accepted));
}

}  // namespace

std::optional<TokenClaims> HttpApi::Impl::authenticate(const httplib::Request& req,
                                                       httplib::Response& res) {
  const std::string header = req.get_header_value("Authorization");
  if (header.rfind("Bearer ", 0) != 0) {
    send_error(res, ErrorCode::kInvalidToken, "Missing bearer token");
    return std::nullopt;
  }
  const std::string token = header.substr(7);
  const auto now = now_utc();
  auto claims = verified.find(token, now);
  if (!claims) {
    auto checked = signer.verify(token, now);
    if (!checked) {
      spdlog::info("auth: token refused: {} [{}]", checked.error(), correlation_id(res));
      send_error(res, ErrorCode::kInvalidToken, "Token expired or invalid");
      return std::nullopt;
    }
    verified.remember(token, *checked);
    claims = std::move(*checked);
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
  auto request = decode_submit(req.get_header_value("Content-Type"), req.body,
                               req.get_header_value("Idempotency-Key"),
                               {config.max_body_bytes, config.max_string_bytes});
  if (!request) {
    send_error(res, request.error());
    return;
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
  process.correlation_id = correlation_id(res);
  process.now = now_utc();
  process.estimated_completion = process.now + type_config->second.expected_duration;
  process.request_hash = request_hash(*request);
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
  send_accepted(res, view);
}

void HttpApi::Impl::status(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  const std::string id = req.matches[1];
  if (!is_process_id(id)) {
    send_error(res, ErrorCode::kNotFound, "Process not found");
    return;
  }
  if (auto cached = completed.find(id)) {
    if (cached->tenant != claims->tenant) {
      send_error(res, ErrorCode::kNotFound, "Process not found");
    } else if (!has_scope(*claims, cached->process_type)) {
      send_error(res, ErrorCode::kInsufficientPermissions, "ProcessType not authorized");
    } else {
      res.status = 200;
      res.set_content(cached->body, kJson);
    }
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
  std::string body = dump_json(to_json(view));
  if (view.status == ProcessStatus::kCompleted) {
    completed.remember(id, {(*record)->tenant, view.process_type, body});
  }
  res.status = 200;
  res.set_content(std::move(body), kJson);
}

void HttpApi::Impl::retry(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  const std::string id = req.matches[1];
  if (!is_process_id(id)) {
    send_error(res, ErrorCode::kNotFound, "Process not found");
    return;
  }
  // Nothing changes before the caller is known to hold the process type's scope: a store
  // that cannot tell the type answers 503 and retries nothing.
  auto record = store.get_process(claims->tenant, id);
  if (!record) {
    spdlog::error("retry: {} [{}]", record.error(), correlation_id(res));
    send_error(res, {ErrorCode::kServiceUnavailable, "Store unavailable", 5});
    return;
  }
  if (!record->has_value()) {
    send_error(res, ErrorCode::kNotFound, "Process not found");
    return;
  }
  if (!has_scope(*claims, (*record)->view.process_type)) {
    send_error(res, ErrorCode::kInsufficientPermissions, "ProcessType not authorized");
    return;
  }
  const auto now = now_utc();
  std::optional<TimePoint> estimate;
  const auto type_config = config.process_types.find((*record)->view.process_type);
  if (type_config != config.process_types.end()) {
    estimate = now + type_config->second.expected_duration;
  }
  auto outcome = store.retry_process(claims->tenant, id, now, estimate);
  if (!outcome) {
    spdlog::error("retry: {} [{}]", outcome.error(), correlation_id(res));
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
  send_accepted(res, view);
}

void HttpApi::Impl::list(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  auto decoded = decode_list_query(req.params);
  if (!decoded) {
    send_error(res, decoded.error());
    return;
  }
  ListQuery query = std::move(*decoded);
  query.tenant = claims->tenant;
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

}  // namespace stargate::server
