// stargated's configuration (stargated.toml), documented in man/stargated.toml.5.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "shared/duration.hpp"
#include "shared/expected.hpp"

namespace stargate::daemon {

struct GatewayConfig {
  std::string url;        // https://gateway.example.com (the API lives under /api/stargate)
  std::string token_url;  // default: url + "/oauth/token"
  std::string ca_file;    // extra CA bundle for the gateway's certificate
  Duration connect_timeout = std::chrono::seconds(10);
  Duration request_timeout = std::chrono::seconds(30);
};

struct CredentialsConfig {
  std::string client_id;
  std::string client_secret_file;  // default: $CREDENTIALS_DIRECTORY/client_secret
  std::string scope;               // empty: everything the client was granted
};

struct QueueConfig {
  std::string path;
  Duration retry_initial = std::chrono::seconds(5);  // sending backoff, doubling
  Duration retry_max = std::chrono::seconds(60);
  Duration retention = std::chrono::hours(24 * 30);  // terminal records are kept this long
};

// How the daemon learns of process changes: from the gateway's change feed when it offers
// one (auto), always from the feed (feed), or by polling each process on the seed's
// schedule (schedule). Without a feed, auto and feed both poll on the schedule.
enum class PollMode { kAuto, kFeed, kSchedule };

struct PollingConfig {
  PollMode mode = PollMode::kAuto;
  Duration feed_wait = std::chrono::seconds(30);     // how long the gateway may hold a request
  Duration feed_interval = std::chrono::seconds(1);  // least time between two feed requests
  Duration fast_interval = std::chrono::seconds(30);
  Duration fast_phase = std::chrono::minutes(2);
  Duration slow_interval = std::chrono::seconds(60);
  Duration timeout = std::chrono::minutes(10);  // default for process types without one
  Duration backoff_initial = std::chrono::seconds(5);
  Duration backoff_max = std::chrono::seconds(80);
  int alert_after = 5;  // consecutive failures before an alert-level log line
};

struct SocketConfig {
  std::string path;
  std::string group;  // empty: the daemon's own group
  std::uint32_t mode = 0660;
  // Every local user of the socket shares the daemon's descriptors: these bound what one of
  // them can hold. A head must arrive within header_timeout of its first byte, a body
  // within body_timeout plus its size at body_min_rate (bytes per second).
  std::size_t max_connections = 256;
  std::size_t max_connections_per_user = 64;
  Duration header_timeout = std::chrono::seconds(10);
  Duration idle_timeout = std::chrono::seconds(30);
  Duration body_timeout = std::chrono::seconds(10);
  std::size_t body_min_rate = 16 * 1024;
  Duration write_timeout = std::chrono::seconds(30);
};

struct ProcessTypeConfig {
  Duration timeout = std::chrono::minutes(10);
  std::string on_complete;  // shell command run with the record on stdin
  Duration on_complete_timeout = std::chrono::seconds(60);
};

struct DaemonConfig {
  GatewayConfig gateway;
  CredentialsConfig credentials;
  QueueConfig queue;
  PollingConfig polling;
  SocketConfig socket;
  std::map<std::string, ProcessTypeConfig> process_types;
  std::string log_level = "info";

  // The polling timeout for a type: its own, or [polling] timeout.
  Duration timeout_for(const std::string& process_type) const;
};

// Reads and validates a file. Every problem is reported (file, line, key), one per line.
Expected<DaemonConfig> load_daemon_config(const std::string& path);
Expected<DaemonConfig> parse_daemon_config(const std::string& text, const std::string& name);

}  // namespace stargate::daemon
