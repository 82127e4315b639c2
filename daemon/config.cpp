// Loading stargated.toml.
#include "daemon/config.hpp"

#include <cstdlib>

#include "shared/codec.hpp"
#include "shared/config.hpp"
#include "shared/paths.hpp"

namespace stargate::daemon {
namespace {

bool is_http_url(const std::string& url) {
  return url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
}

Expected<DaemonConfig> read(ConfigReader& reader) {
  DaemonConfig config;
  auto& gateway = config.gateway;
  reader.require("gateway.url");
  gateway.url = reader.string("gateway.url");
  while (!gateway.url.empty() && gateway.url.back() == '/')
    gateway.url.pop_back();
  if (!gateway.url.empty() && !is_http_url(gateway.url)) {
    reader.error("gateway.url", "must start with https:// (or http:// for a local test)");
  }
  gateway.token_url = reader.string("gateway.token_url", gateway.url + "/oauth/token");
  if (!is_http_url(gateway.token_url)) {
    reader.error("gateway.token_url", "must start with https:// or http://");
  }
  gateway.ca_file = reader.string("gateway.ca_file");
  gateway.connect_timeout = reader.duration("gateway.connect_timeout", gateway.connect_timeout,
                                            std::chrono::milliseconds(100));
  gateway.request_timeout = reader.duration("gateway.request_timeout", gateway.request_timeout,
                                            std::chrono::milliseconds(100));

  auto& credentials = config.credentials;
  reader.require("credentials.client_id");
  credentials.client_id = reader.string("credentials.client_id");
  credentials.client_secret_file = reader.string("credentials.client_secret_file");
  credentials.scope = reader.string("credentials.scope");

  auto& queue = config.queue;
  queue.path = reader.string("queue.path", default_queue_path());
  queue.retry_initial =
      reader.duration("queue.retry_initial", queue.retry_initial, std::chrono::milliseconds(1));
  queue.retry_max =
      reader.duration("queue.retry_max", queue.retry_max, std::chrono::milliseconds(1));
  queue.retention = reader.duration("queue.retention", queue.retention);

  auto& polling = config.polling;
  const Duration min = std::chrono::milliseconds(1);
  polling.fast_interval = reader.duration("polling.fast_interval", polling.fast_interval, min);
  polling.fast_phase = reader.duration("polling.fast_phase", polling.fast_phase);
  polling.slow_interval = reader.duration("polling.slow_interval", polling.slow_interval, min);
  polling.timeout = reader.duration("polling.timeout", polling.timeout, min);
  polling.backoff_initial =
      reader.duration("polling.backoff_initial", polling.backoff_initial, min);
  polling.backoff_max = reader.duration("polling.backoff_max", polling.backoff_max, min);
  polling.alert_after = static_cast<int>(reader.integer("polling.alert_after", 5, 1, 1000));
  const std::string mode = reader.string("polling.mode", "auto");
  if (mode == "auto") {
    polling.mode = PollMode::kAuto;
  } else if (mode == "feed") {
    polling.mode = PollMode::kFeed;
  } else if (mode == "schedule") {
    polling.mode = PollMode::kSchedule;
  } else {
    reader.error("polling.mode", "expected \"auto\", \"feed\" or \"schedule\"");
  }
  polling.feed_wait = reader.duration("polling.feed_wait", polling.feed_wait);
  if (polling.feed_wait > std::chrono::minutes(5)) {
    reader.error("polling.feed_wait", "at most 5m");
  }
  polling.feed_interval = reader.duration("polling.feed_interval", polling.feed_interval,
                                          std::chrono::milliseconds(10));

  auto& socket = config.socket;
  socket.path = reader.string("socket.path", default_socket_path());
  socket.group = reader.string("socket.group");
  socket.mode = reader.file_mode("socket.mode", socket.mode);
  socket.max_connections = static_cast<std::size_t>(reader.integer(
      "socket.max_connections", static_cast<std::int64_t>(socket.max_connections), 4, 100000));
  socket.max_connections_per_user = static_cast<std::size_t>(
      reader.integer("socket.max_connections_per_user",
                     static_cast<std::int64_t>(socket.max_connections_per_user), 1, 100000));
  const auto at_least = std::chrono::milliseconds(100);
  socket.header_timeout = reader.duration("socket.header_timeout", socket.header_timeout, at_least);
  socket.idle_timeout = reader.duration("socket.idle_timeout", socket.idle_timeout, at_least);
  socket.body_timeout = reader.duration("socket.body_timeout", socket.body_timeout, at_least);
  socket.body_min_rate = static_cast<std::size_t>(reader.integer(
      "socket.body_min_rate", static_cast<std::int64_t>(socket.body_min_rate), 1, 1LL << 30));
  socket.write_timeout = reader.duration("socket.write_timeout", socket.write_timeout, at_least);

  for (const auto& name : reader.table_names("process_types")) {
    const std::string prefix = "process_types." + name;
    if (!is_process_type_name(name)) {
      reader.error(prefix, "a process type name is 1-64 characters of a-z, 0-9, '_' and '-'");
      continue;
    }
    ProcessTypeConfig type;
    type.timeout = reader.duration(prefix + ".timeout", polling.timeout, min);
    type.on_complete = reader.string(prefix + ".on_complete");
    type.on_complete_timeout =
        reader.duration(prefix + ".on_complete_timeout", type.on_complete_timeout, min);
    config.process_types[name] = type;
  }
  config.log_level = reader.string("log.level", config.log_level);

  reader.reject_unknown_keys();
  if (!reader.ok()) return fail(reader.error_text());
  return config;
}

}  // namespace

Duration DaemonConfig::timeout_for(const std::string& process_type) const {
  const auto it = process_types.find(process_type);
  return it == process_types.end() ? polling.timeout : it->second.timeout;
}

Expected<DaemonConfig> load_daemon_config(const std::string& path) {
  auto reader = ConfigReader::load(path);
  if (!reader) return Unexpected{reader.error()};
  return read(*reader);
}

Expected<DaemonConfig> parse_daemon_config(const std::string& text, const std::string& name) {
  auto reader = ConfigReader::parse(text, name);
  if (!reader) return Unexpected{reader.error()};
  return read(*reader);
}

}  // namespace stargate::daemon
