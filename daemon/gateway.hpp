// The daemon's side of the gateway API: submit a request, read a process's status. The
// interface lets the dispatcher be tested against a scripted gateway; HttpGateway is the real
// one (cpp-httplib, HTTPS, OAuth2 client credentials with the token kept in memory only).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config.hpp"
#include "shared/codec.hpp"
#include "shared/duration.hpp"

namespace stargate::daemon {

// How the daemon treats an answer.
enum class Outcome {
  kOk,            // 200/202
  kTransient,     // connection errors, timeouts, 408, 429, 5xx, and anything unexpected: retry
  kPermanent,     // 400, 403, 409, 413, 415, 422: the gateway refused this request for good
  kUnauthorized,  // 401 even with a fresh token
  kNotFound,      // 404 on a status read
};

// Classifies an HTTP status (0: no answer at all) for a submit or a status read.
Outcome classify(int http_status, bool is_submit);

struct GatewayReply {
  Outcome outcome = Outcome::kTransient;
  int status = 0;  // HTTP status; 0 when there was no answer
  nlohmann::json body;
  std::optional<Duration> retry_after;  // from Retry-After, when the gateway sent one
  std::string error;                    // one line for logs and lastError; never a secret
};

// Reads a Retry-After value in seconds (RFC 9110 delay-seconds), capped at a day.
std::optional<Duration> parse_retry_after(std::string_view value);

class Gateway {
 public:
  virtual ~Gateway() = default;
  // Both are safe to call from several threads at once.
  // Requests carry X-Correlation-ID: the clientProcessId, so that one request can be
  // followed through the daemon's and the gateway's logs and the gateway's audit trail.
  virtual GatewayReply submit(const SubmitRequest& request) = 0;
  virtual GatewayReply status(const std::string& process_id, const std::string& correlation_id) = 0;
  // The process types the last token was granted; empty until a token was obtained.
  virtual std::vector<std::string> granted_types() const = 0;
  // How long the access token held now stays valid; std::nullopt when none is held.
  virtual std::optional<Duration> token_valid_for() const = 0;
  // Asks for a new attempt of a failed, retryable process (202), or learns why not (409).
  virtual GatewayReply retry(const std::string& process_id, const std::string& correlation_id) = 0;

  // The change feed: the tenant's processes that changed after `cursor`, or (cursor empty)
  // only the cursor to start from; the gateway holds the request up to `wait` when nothing
  // changed. 404 when the gateway has no feed, 410 when it no longer knows the cursor.
  virtual GatewayReply changes(const std::string& cursor, Duration wait) = 0;
  // Whether the gateway's last token, submit or status answer said it offers the feed
  // (X-StarGate-Feed), so that finding out costs no request of its own.
  virtual bool offers_feed() const = 0;
  // Gets an access token now when none is held: the token answer says whether the feed is
  // offered. Fails as a submit would when the token endpoint cannot be reached.
  virtual GatewayReply prepare() = 0;
  // At stop: a change-feed request the gateway holds returns at once, and none is sent
  // after. Other calls finish as usual.
  virtual void interrupt() {}
  // Reads the client secret again (its file, or $CREDENTIALS_DIRECTORY), for the next token
  // request; on failure the secret held stays. (A token request refused with invalid_client
  // does this by itself, once, before it reports the failure.)
  virtual Status reload_secret() { return {}; }
};

// Fails when the URL cannot be used or the secret cannot be read.
Expected<std::unique_ptr<Gateway>> make_http_gateway(const GatewayConfig& gateway,
                                                     const CredentialsConfig& credentials);

// Reads the client secret from `path`, or from $CREDENTIALS_DIRECTORY/client_secret when
// `path` is empty. Refuses a file that group or others may read, saying how to fix it.
Expected<std::string> read_client_secret(const std::string& path);

}  // namespace stargate::daemon
