// The process API over HTTP: authentication and rate limiting of API requests, then
// submit, status, retry and list, whose decisions are processes/processes.cpp's.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "server/common/digest.hpp"
#include "server/gateway/http_api_impl.hpp"
#include "server/gateway/http_framing.hpp"
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
  note_caller(claims->client_id, claims->tenant);
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
  advertise_feed(res);  // on every answer of the process API, so clients learn of it by the way
  return claims;
}

Caller HttpApi::Impl::caller(const TokenClaims& claims, const httplib::Response& res) const {
  return {claims.tenant, claims.client_id, claims.scopes, correlation_id(res)};
}

void HttpApi::Impl::advertise_feed(httplib::Response& res) const {
  if (offers_feed()) res.set_header(kFeedHeader, kChangesPath);
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
  log_fields().client_process_id = request->client_process_id;
  auto submitted = processes.submit(caller(*claims, res), std::move(*request), now_utc());
  if (!submitted) {
    send_error(res, submitted.error());
    return;
  }
  send_accepted(res, submitted->view);
}

void HttpApi::Impl::status(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  log_fields().process_id = req.matches[1];
  auto answer = processes.status(caller(*claims, res), req.matches[1]);
  if (!answer) {
    send_error(res, answer.error());
    return;
  }
  if (!answer->final) {
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(config.status_retry_after);
    res.set_header("Retry-After", std::to_string(seconds.count()));
  }
  // The answer's tag is a digest of its body: a client that has it (If-None-Match) gets
  // 304 without a body until the process changes.
  const std::string tag = "\"" + sha256_hex(answer->body).substr(0, 32) + "\"";
  res.set_header("ETag", tag);
  if (none_match(req.get_header_value("If-None-Match"), tag)) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(std::move(answer->body), kJson);
}

void HttpApi::Impl::retry(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  log_fields().process_id = req.matches[1];
  auto retried = processes.retry(caller(*claims, res), req.matches[1], now_utc());
  if (!retried) {
    send_error(res, retried.error());
    return;
  }
  send_accepted(res, retried->view);
}

// The change feed: the caller's processes that changed after its cursor. With nothing new
// and a wait asked for, the request parks (one worker thread each, max_parked at most)
// until a change of the caller's tenant or the end of the wait; when every place is taken
// it is answered at once with retryAfter, so that the client polls instead.
void HttpApi::Impl::changes(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  auto query = decode_changes_query(req.params, config.feed_max_wait);
  if (!query) {
    send_error(res, query.error());
    return;
  }
  const Caller who = caller(*claims, res);
  const auto deadline = std::chrono::steady_clock::now() + query->wait;
  ChangeWaiters::Place place;
  std::optional<int> retry_after;
  FeedAnswer reason = FeedAnswer::kChange;
  Expected<ChangePage, ApiError> page = Unexpected{ApiError{}};
  for (;;) {
    // The generation is read before the store: a change committed after the read below
    // moves it, and the wait does not sleep through that change.
    const auto seen = waiters.generation(who.tenant);
    page = read_changes(store, who, query->cursor, query->limit);
    if (!page) {
      send_error(res, page.error());
      return;
    }
    if (query->cursor.empty()) {
      reason = FeedAnswer::kNoWait;
      break;
    }
    if (page->cursor != query->cursor) break;  // changes, perhaps of types it may not see
    if (query->wait == Duration::zero()) {
      reason = FeedAnswer::kNoWait;
      break;
    }
    if (!place) place = waiters.park(who.tenant);
    if (!place) {
      reason = waiters.stopping() ? FeedAnswer::kStopping : FeedAnswer::kFull;
      retry_after = static_cast<int>(
          std::chrono::duration_cast<std::chrono::seconds>(config.status_retry_after).count());
      break;
    }
    if (!waiters.wait(who.tenant, seen, deadline, client_left)) {
      reason = waiters.stopping()                            ? FeedAnswer::kStopping
               : std::chrono::steady_clock::now() < deadline ? FeedAnswer::kLeft
                                                             : FeedAnswer::kTimeout;
      break;
    }
  }
  waiters.answered(reason);
  nlohmann::json changed = nlohmann::json::array();
  for (const auto& record : page->processes)
    changed.push_back(to_json(record.view));
  nlohmann::json body = {
      {"changes", std::move(changed)}, {"cursor", page->cursor}, {"more", page->more}};
  if (retry_after) body["retryAfter"] = *retry_after;
  res.set_header("Cache-Control", "no-store");
  send_json(res, 200, body);
}

void HttpApi::Impl::list(const httplib::Request& req, httplib::Response& res) {
  auto claims = authorize(req, res);
  if (!claims) return;
  auto query = decode_list_query(req.params);
  if (!query) {
    send_error(res, query.error());
    return;
  }
  auto page = processes.list(caller(*claims, res), std::move(*query));
  if (!page) {
    send_error(res, page.error());
    return;
  }
  nlohmann::json items = nlohmann::json::array();
  for (const auto& record : page->processes)
    items.push_back(to_json(record.view));
  nlohmann::json body = {{"processes", items}};
  if (page->next_cursor) body["nextCursor"] = *page->next_cursor;
  send_json(res, 200, body);
}

}  // namespace stargate::server
