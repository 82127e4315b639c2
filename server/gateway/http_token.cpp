// The OAuth2 token endpoint (RFC 6749 §4.4, §5, §6): client credentials and refresh
// token grants.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "server/gateway/http_api_impl.hpp"
#include "shared/ids.hpp"
#include "shared/text.hpp"

namespace stargate::server {

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
                         "Scope not granted to this client: " + escape_text(scope, 80));
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
  const std::string& address = req.remote_addr;
  AuthThrottle::Attempt attempt(auth_throttle, address, now_utc());
  if (const auto& wait = attempt.refused()) {
    const auto seconds =
        std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(*wait).count());
    spdlog::warn("token: {} refused: too many failed client authentications [{}]", address,
                 correlation_id(res));
    metrics.client_auth_refused("throttled");
    res.set_header("Retry-After", std::to_string(seconds));
    send_oauth_error(res, 429, "temporarily_unavailable",
                     "Too many failed client authentications from this address; retry after " +
                         std::to_string(seconds) + " s");
    return std::nullopt;
  }
  const auto [client_id, secret] = client_credentials(req);
  if (client_id.empty() || secret.empty()) {
    attempt.failed(now_utc());
    metrics.client_auth_refused("failed");
    send_oauth_error(res, 401, "invalid_client", "Client authentication failed");
    return std::nullopt;
  }
  auto client = store.find_client(client_id);
  if (!client) {
    spdlog::error("token: {}", client.error());
    send_oauth_error(res, 503, "temporarily_unavailable", "Store unavailable");
    return std::nullopt;
  }
  bool valid = client->has_value() && !(*client)->revoked;
  if (valid) {
    AuthThrottle::Slot slot(auth_throttle, std::chrono::seconds(5));
    if (!slot.acquired) {
      metrics.client_auth_refused("busy");
      res.set_header("Retry-After", "1");
      send_oauth_error(res, 503, "temporarily_unavailable",
                       "Busy checking other credentials; retry shortly");
      return std::nullopt;
    }
    valid = verify_secret((*client)->secret_hash, secret);
    // Within a rotation's grace the secret it replaced is accepted too.
    if (!valid && (*client)->previous_secret_valid(now_utc()) &&
        verify_secret((*client)->previous_secret_hash, secret)) {
      valid = true;
      request_context.previous_secret = true;
      spdlog::warn(
          "token: client {} authenticated with its previous secret, accepted until {}; "
          "give it the new one [{}]",
          (*client)->client_id, format_timestamp(*(*client)->previous_secret_until),
          correlation_id(res));
    }
  }
  // The same answer for an unknown client, a revoked one and a wrong secret.
  if (!valid) {
    attempt.failed(now_utc());
    metrics.client_auth_refused("failed");
    spdlog::warn("token: client authentication failed for '{}' from {} [{}]",
                 client_id.substr(0, 64), address, correlation_id(res));
    send_oauth_error(res, 401, "invalid_client", "Client authentication failed");
    return std::nullopt;
  }
  note_caller((*client)->client_id, (*client)->tenant);
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
  advertise_feed(res);
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

}  // namespace stargate::server
