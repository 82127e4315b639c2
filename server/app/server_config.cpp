// Loading server.toml.
#include "server/app/server_config.hpp"

#include <cstdlib>
#include <filesystem>

#include "server/store/redis/redis_url.hpp"
#include "shared/codec.hpp"
#include "shared/config.hpp"
#include "shared/logging.hpp"

namespace stargate::server {
namespace {

// mongodb:// or mongodb+srv://, with at most a user name before the host: the password
// comes from a file.
Status check_mongo_uri(const std::string& uri) {
  std::string rest;
  for (const char* scheme : {"mongodb://", "mongodb+srv://"}) {
    if (uri.rfind(scheme, 0) == 0) rest = uri.substr(std::string(scheme).size());
  }
  if (rest.empty()) return fail("expected mongodb://host[:port]/database[?options]");
  const auto authority = rest.substr(0, rest.find_first_of("/?"));
  if (const auto at = authority.rfind('@'); at != std::string::npos) {
    if (authority.substr(0, at).find(':') != std::string::npos) {
      return fail("a password does not belong in the URI: use [mongo] password_file");
    }
  }
  if (uri.size() > 4096) return fail("longer than 4096 bytes");
  return {};
}

std::string under(const std::string& dir, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return (std::filesystem::path(dir) / path).string();
}

RateLimit read_rate_limit(ConfigReader& reader, const std::string& prefix, RateLimit fallback) {
  RateLimit limit;
  limit.per_minute = static_cast<double>(reader.integer(
      prefix + ".per_minute", static_cast<std::int64_t>(fallback.per_minute), 1, 10'000'000));
  limit.burst = static_cast<double>(
      reader.integer(prefix + ".burst", static_cast<std::int64_t>(fallback.burst), 1, 10'000'000));
  return limit;
}

void read_front_limits(ConfigReader& reader, FrontLimits& limits) {
  const auto size = [&](const char* key, std::size_t fallback, std::int64_t low,
                        std::int64_t high) {
    return static_cast<std::size_t>(reader.integer(std::string("server.") + key,
                                                   static_cast<std::int64_t>(fallback), low, high));
  };
  const auto duration = [&](const char* key, Duration fallback) {
    return reader.duration(std::string("server.") + key, fallback, std::chrono::milliseconds(100));
  };
  limits.threads = size("http_threads", limits.threads, 1, 1024);
  limits.max_connections = size("max_connections", limits.max_connections, 16, 1'000'000);
  limits.max_connections_per_address =
      size("max_connections_per_address", limits.max_connections_per_address, 1, 1'000'000);
  limits.max_requests_per_connection =
      size("max_requests_per_connection", limits.max_requests_per_connection, 1, 1'000'000);
  limits.header_timeout = duration("header_timeout", limits.header_timeout);
  limits.idle_timeout = duration("idle_timeout", limits.idle_timeout);
  limits.body_timeout = duration("body_timeout", limits.body_timeout);
  limits.body_min_rate = size("body_min_rate", limits.body_min_rate, 1, 1LL << 30);
  limits.write_timeout = duration("write_timeout", limits.write_timeout);
  limits.framing.max_head_bytes =
      size("max_header_bytes", limits.framing.max_head_bytes, 1024, 1 << 20);
  limits.framing.max_headers = size("max_headers", limits.framing.max_headers, 8, 10'000);
}

void read(ConfigReader& reader, ServerConfig& config) {
  const std::string listen = reader.string("server.listen", "127.0.0.1:8080");
  if (auto address = parse_listen_address(listen)) {
    std::tie(config.listen_host, config.listen_port) = *address;
  } else {
    reader.error("server.listen", address.error());
  }
  config.state_dir = reader.string("server.state_dir", config.state_dir);
  config.tls_cert = reader.string("server.tls_cert");
  config.tls_key = reader.string("server.tls_key");
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    reader.error(config.tls_cert.empty() ? "server.tls_key" : "server.tls_cert",
                 "tls_cert and tls_key go together");
  }
  config.allow_plain_http = reader.boolean("server.allow_plain_http", false);
  read_front_limits(reader, config.http);
  config.max_body_bytes =
      static_cast<std::size_t>(reader.integer("server.max_body_bytes", 1 << 20, 1024, 64 << 20));
  config.http.framing.max_body_bytes = config.max_body_bytes;
  config.max_string_bytes =
      static_cast<std::size_t>(reader.integer("server.max_string_bytes", 64 * 1024, 64, 16 << 20));
  config.status_retry_after = reader.duration("server.status_retry_after",
                                              config.status_retry_after, std::chrono::seconds(1));
  config.feed_enabled = reader.boolean("feed.enabled", config.feed_enabled);
  config.feed_max_wait =
      reader.duration("feed.max_wait", config.feed_max_wait, std::chrono::seconds(1));
  if (config.feed_max_wait > std::chrono::minutes(10)) {
    reader.error("feed.max_wait", "at most 10m (a client's proxies give up on longer requests)");
  }
  config.feed_max_parked = static_cast<std::size_t>(reader.integer(
      "feed.max_parked", static_cast<std::int64_t>(config.feed_max_parked), 0, 1023));
  config.feed_max_parked_per_tenant = static_cast<std::size_t>(
      reader.integer("feed.max_parked_per_tenant",
                     static_cast<std::int64_t>(config.feed_max_parked_per_tenant), 0, 1023));
  if (config.feed_max_parked >= config.http.threads) {
    reader.error("feed.max_parked", "must be less than server.http_threads (" +
                                        std::to_string(config.http.threads) +
                                        "), leaving threads for other requests");
  }
  config.idempotency_ttl =
      reader.duration("server.idempotency_ttl", config.idempotency_ttl, std::chrono::hours(24));
  if (reader.has("server.metrics_allow")) {
    config.metrics_allow = reader.string_list("server.metrics_allow");
  }
  config.log_level = reader.string("log.level");
  if (reader.has("log.level") && !is_log_level(config.log_level)) {
    reader.error("log.level", "expected trace, debug, info, warn, error, critical or off");
  }
  config.rate_limit = read_rate_limit(reader, "rate_limit", config.rate_limit);
  for (const auto& tenant : reader.table_names("rate_limit.tenants")) {
    config.tenant_rate_limits[tenant] =
        read_rate_limit(reader, "rate_limit.tenants." + tenant, config.rate_limit);
  }
  config.store_backend = reader.string("store.backend", config.store_backend);
  if (config.store_backend != "sqlite" && config.store_backend != "redis+mongo") {
    reader.error("store.backend", "expected \"sqlite\" or \"redis+mongo\"");
  }
  config.store_path = reader.string("store.path", "stargate-server.db");
  config.redis_url = reader.string("redis.url", config.redis_url);
  if (auto endpoint = redis::parse_redis_url(config.redis_url); !endpoint) {
    reader.error("redis.url", endpoint.error());
  }
  config.redis_password_file = reader.string("redis.password_file");
  config.redis_prefix = reader.string("redis.prefix", config.redis_prefix);
  if (auto checked = redis::check_key_prefix(config.redis_prefix); !checked) {
    reader.error("redis.prefix", checked.error());
  }
  config.mongo_uri = reader.string("mongo.uri", config.mongo_uri);
  if (auto checked = check_mongo_uri(config.mongo_uri); !checked) {
    reader.error("mongo.uri", checked.error());
  }
  config.mongo_password_file = reader.string("mongo.password_file");
  config.key_file = reader.string("auth.key_file", "jwt.key");
  config.token_algorithm = reader.string("auth.algorithm", config.token_algorithm);
  if (config.token_algorithm != "HS256" && config.token_algorithm != "RS256" &&
      config.token_algorithm != "ES256") {
    reader.error("auth.algorithm", "expected HS256, RS256 or ES256");
  }
  config.private_key_file = reader.string("auth.private_key_file");
  config.public_key_file = reader.string("auth.public_key_file");
  if (config.token_algorithm != "HS256" && config.public_key_file.empty()) {
    reader.error("auth.algorithm", config.token_algorithm + " needs auth.public_key_file");
  }
  config.issuer = reader.string("auth.issuer", config.issuer);
  config.token_lifetime =
      reader.duration("auth.token_lifetime", config.token_lifetime, std::chrono::seconds(2));
  config.auth_max_failures =
      static_cast<int>(reader.integer("auth.max_failures", config.auth_max_failures, 1, 100000));
  config.auth_failure_window = reader.duration("auth.failure_window", config.auth_failure_window,
                                               std::chrono::milliseconds(100));
  config.auth_concurrent_checks = static_cast<int>(
      reader.integer("auth.concurrent_checks", config.auth_concurrent_checks, 1, 64));
  config.workers = static_cast<std::size_t>(reader.integer("engine.workers", 2, 1, 1024));
  config.stuck_after =
      reader.duration("engine.stuck_after", config.stuck_after, std::chrono::seconds(1));
  config.max_queue_wait =
      reader.duration("engine.max_queue_wait", config.max_queue_wait, std::chrono::seconds(1));
  config.lease = reader.duration("engine.lease", config.lease, std::chrono::seconds(3));

  config.order.step_duration = reader.duration("order.step_duration", config.order.step_duration);
  config.order.default_stock = reader.integer("order.default_stock", 1000, 0, 1LL << 40);
  config.order.stock = reader.integer_table("order.stock");
  for (const auto& [sku, units] : config.order.stock) {
    if (units < 0 || units > (1LL << 40) || sku.empty() || sku.size() > 128) {
      reader.error("order.stock." + sku, "a SKU of 1-128 characters with 0 to 1099511627776 units");
    }
  }
  config.shipping.step_duration =
      reader.duration("shipping.step_duration", config.shipping.step_duration);
  config.shipping.carrier = reader.string("shipping.carrier", config.shipping.carrier);

  for (const auto& name : reader.table_names("process_types")) {
    const std::string prefix = "process_types." + name;
    if (!is_process_type_name(name)) {
      reader.error(prefix, "a process type name is 1-64 characters of a-z, 0-9, '_' and '-'");
      continue;
    }
    ProcessTypeConfig type;
    type.handler = reader.string(prefix + ".handler", name);
    type.expected_duration = reader.duration(prefix + ".expected_duration", type.expected_duration);
    const auto* kind = find_handler_kind(type.handler);
    if (kind == nullptr) {
      reader.error(prefix + ".handler",
                   "unknown handler '" + type.handler + "' (" + handler_kind_names() + ")");
    } else if (kind->runs_command) {
      type.command = reader.string_list(prefix + ".command");
      type.timeout = reader.duration(prefix + ".timeout", type.timeout, std::chrono::seconds(1));
      if (type.command.empty()) {
        reader.error(prefix + ".handler",
                     type.handler + " needs command = [\"/path/to/program\", ...]");
      } else if (type.command.front().empty() || type.command.front().front() != '/') {
        reader.error(prefix + ".command", "the program must be an absolute path");
      }
    }
    config.process_types[name] = type;
  }
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Expected<std::pair<std::string, int>> parse_listen_address(const std::string& text) {
  std::string host;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("expected [address]:port, got '" + text + "'");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return fail("expected host:port, got '" + text + "'");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port_text) > 65535) {
    return fail("invalid port in '" + text + "' (0-65535)");
  }
  return std::pair{host, std::stoi(port_text)};
}

namespace {

// The defaults, then the file's settings, then what follows from them.
Expected<ServerConfig> make_config(ConfigReader* reader) {
  ServerConfig config;
  if (const char* state = std::getenv("STATE_DIRECTORY"); state != nullptr && *state != '\0') {
    config.state_dir = state;
  }
  if (reader == nullptr) {
    config.store_path = "stargate-server.db";
    config.key_file = "jwt.key";
  } else {
    read(*reader, config);
    reader->reject_unknown_keys();
    if (!reader->ok()) return fail(reader->error_text());
  }
  if (config.process_types.empty()) {
    config.process_types["order"].handler = "order";
    config.process_types["shipping"].handler = "shipping";
  }
  config.store_path = under(config.state_dir, config.store_path);
  config.key_file = under(config.state_dir, config.key_file);
  config.private_key_file = under(config.state_dir, config.private_key_file);
  config.tls_cert = under(config.state_dir, config.tls_cert);
  config.tls_key = under(config.state_dir, config.tls_key);
  config.public_key_file = under(config.state_dir, config.public_key_file);
  return config;
}

}  // namespace

Expected<ServerConfig> load_server_config(const std::string& path) {
  if (path.empty()) return make_config(nullptr);
  auto reader = ConfigReader::load(path);
  if (!reader) return Unexpected{reader.error()};
  return make_config(&*reader);
}

Expected<ServerConfig> parse_server_config(const std::string& text, const std::string& name) {
  auto reader = ConfigReader::parse(text, name);
  if (!reader) return Unexpected{reader.error()};
  return make_config(&*reader);
}

std::vector<std::string> changes_needing_restart(const ServerConfig& was, const ServerConfig& now) {
  const std::pair<const char*, bool> restart_only[] = {
      {"[server] listen", now.listen_host != was.listen_host || now.listen_port != was.listen_port},
      {"TLS on or off", now.tls_cert.empty() != was.tls_cert.empty() ||
                            now.allow_plain_http != was.allow_plain_http},
      {"[store], [redis], [mongo]",
       now.state_dir != was.state_dir || now.store_backend != was.store_backend ||
           now.store_path != was.store_path || now.redis_url != was.redis_url ||
           now.redis_password_file != was.redis_password_file ||
           now.redis_prefix != was.redis_prefix || now.mongo_uri != was.mongo_uri ||
           now.mongo_password_file != was.mongo_password_file},
      {"[auth]", now.key_file != was.key_file || now.token_algorithm != was.token_algorithm ||
                     now.private_key_file != was.private_key_file ||
                     now.public_key_file != was.public_key_file || now.issuer != was.issuer ||
                     now.token_lifetime != was.token_lifetime ||
                     now.refresh_token_lifetime != was.refresh_token_lifetime ||
                     now.auth_max_failures != was.auth_max_failures ||
                     now.auth_failure_window != was.auth_failure_window ||
                     now.auth_concurrent_checks != was.auth_concurrent_checks},
      {"[http] and request limits", now.http != was.http ||
                                        now.max_body_bytes != was.max_body_bytes ||
                                        now.max_string_bytes != was.max_string_bytes ||
                                        now.status_retry_after != was.status_retry_after ||
                                        now.metrics_allow != was.metrics_allow},
      {"[feed]", now.feed_enabled != was.feed_enabled || now.feed_max_wait != was.feed_max_wait ||
                     now.feed_max_parked != was.feed_max_parked ||
                     now.feed_max_parked_per_tenant != was.feed_max_parked_per_tenant},
      {"[engine]", now.workers != was.workers || now.stuck_after != was.stuck_after ||
                       now.max_queue_wait != was.max_queue_wait || now.lease != was.lease ||
                       now.idempotency_ttl != was.idempotency_ttl},
  };
  std::vector<std::string> changed;
  for (const auto& [what, differs] : restart_only) {
    if (differs) changed.emplace_back(what);
  }
  return changed;
}

}  // namespace stargate::server
