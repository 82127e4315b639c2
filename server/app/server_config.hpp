// stargate-server's configuration (server.toml), documented in man/stargate-server.8.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/engine/handlers/builtin_handlers.hpp"
#include "server/engine/handlers/registry.hpp"
#include "server/gateway/http_front.hpp"
#include "server/gateway/rate_limiter.hpp"
#include "shared/duration.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  int listen_port = 8080;         // 0: any free port
  std::string tls_cert;           // PEM certificate chain; with tls_key, the server speaks HTTPS
  std::string tls_key;            // PEM private key, not readable by group or others
  bool allow_plain_http = false;  // plain HTTP beyond loopback only when this is true
  std::string state_dir = ".";
  std::string store_backend = "sqlite";  // or "redis+mongo" (scale-out)
  std::string store_path;                // default: <state_dir>/stargate-server.db
  std::string redis_url = "redis://127.0.0.1:6379";
  std::string redis_password_file;        // else the credential "redis-password", if there is one
  std::string redis_prefix = "stargate";  // of every key name in Redis
  std::string mongo_uri = "mongodb://127.0.0.1:27017/stargate";
  std::string mongo_password_file;        // else the credential "mongodb-password", if there is one
  std::string key_file;                   // HS256 key; default: <state_dir>/jwt.key
  std::string token_algorithm = "HS256";  // or RS256, ES256 with the PEM files below
  std::string private_key_file;           // RS256/ES256 signing key (absent: verify only)
  std::string public_key_file;            // RS256/ES256 verification key
  std::string issuer = "stargate-server";
  Duration token_lifetime = std::chrono::hours(1);
  Duration refresh_token_lifetime = std::chrono::hours(24 * 30);
  // Failed client authentications an address may make per window before it is refused
  // without a check, and how many Argon2id checks run at once.
  int auth_max_failures = 10;
  Duration auth_failure_window = std::chrono::minutes(1);
  int auth_concurrent_checks = 2;
  FrontLimits http;  // connections, deadlines and threads of the HTTP front
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_string_bytes = 64 * 1024;                // any one string in a request's data
  Duration status_retry_after = std::chrono::seconds(30);  // suggested poll interval
  // The change feed (GET /api/stargate/processes/changes): offered or not, the longest wait
  // a request may ask for, and how many may wait at once (0: half of the HTTP threads).
  bool feed_enabled = true;
  Duration feed_max_wait = std::chrono::seconds(60);
  std::size_t feed_max_parked = 0;
  std::size_t feed_max_parked_per_tenant = 0;  // 0: half of the above, at least 1
  std::size_t parked_limit() const {
    return feed_max_parked != 0 ? feed_max_parked : http.threads / 2;
  }
  std::size_t parked_limit_per_tenant() const {
    if (feed_max_parked_per_tenant != 0) return feed_max_parked_per_tenant;
    return std::max<std::size_t>(1, parked_limit() / 2);
  }
  Duration idempotency_ttl = std::chrono::hours(24);              // at least 24 h
  std::vector<std::string> metrics_allow = {"127.0.0.1", "::1"};  // who may GET /metrics
  RateLimit rate_limit;
  std::map<std::string, RateLimit> tenant_rate_limits;
  // Engine worker threads: each runs one process at a time, so a node runs at most this
  // many at once (processes whose handlers mostly wait want many).
  std::size_t workers = 2;
  // Readiness fails when a worker has run one process longer than stuck_after, or when the
  // process at the head of the queue has waited longer than max_queue_wait.
  Duration stuck_after = std::chrono::minutes(15);
  Duration max_queue_wait = std::chrono::minutes(5);
  // redis+mongo: how long a worker's claim on a process lasts unless it renews it (every
  // third of it while the handler runs); then another worker takes the process over.
  Duration lease = std::chrono::seconds(30);
  std::map<std::string, ProcessTypeConfig> process_types;
  OrderSettings order;
  ShippingSettings shipping;
  std::string log_level;  // [log] level; empty: --log-level (default info)
};

// Reads `path`, or uses the defaults when it is empty. Relative paths in the file are taken
// from state_dir, whose default is $STATE_DIRECTORY under systemd and "." otherwise.
// Fails listing every problem with its file, line and key.
Expected<ServerConfig> load_server_config(const std::string& path);
// The same from text in memory; `name` stands for the file in errors.
Expected<ServerConfig> parse_server_config(const std::string& text, const std::string& name);

// Whether `host` is a loopback address or name (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

// "127.0.0.1:8080", "[::1]:8080", "localhost:0" -> host and port.
Expected<std::pair<std::string, int>> parse_listen_address(const std::string& text);

// The parts of the configuration that differ from `was` to `now` and take effect only at the
// next start (all but the rate limits, the log level and the TLS files, which a reload
// applies), named as the log names them: "[server] listen", "[engine]", ...
std::vector<std::string> changes_needing_restart(const ServerConfig& was, const ServerConfig& now);

}  // namespace stargate::server
