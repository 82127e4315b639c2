#include "server/app/backends.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "server/store/mongo/mongo_store.hpp"
#include "server/store/redis/redis_answer_cache.hpp"
#include "server/store/redis/redis_auth_failures.hpp"
#include "server/store/redis/redis_changes.hpp"
#include "server/store/redis/redis_client.hpp"
#include "server/store/redis/redis_rate_limiter.hpp"
#include "server/store/redis/redis_revocations.hpp"
#include "server/store/redis/redis_work_stream.hpp"
#include "server/store/sqlite/sqlite_store.hpp"
#include "shared/secrets.hpp"

namespace stargate::server {
namespace {

// An optional password: the configured file, else the credential when systemd passed one.
Expected<std::string> optional_password(const std::string& file, const std::string& credential,
                                        const std::string& what) {
  if (file.empty()) {
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (dir == nullptr || !std::filesystem::exists(std::string(dir) + "/" + credential)) {
      return std::string();
    }
  }
  return read_secret_file(file, credential, what, what + ": none given");
}

// Percent-encodes a URI's user information (RFC 3986 §3.2.1).
std::string encode_userinfo(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// mongodb://user@host/... with a password from a file -> mongodb://user:password@host/...
Expected<std::string> mongo_uri_with_password(const std::string& uri, const std::string& password) {
  const auto scheme = uri.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto authority_end = uri.find_first_of("/?", start);
  const auto at = uri.rfind('@', authority_end);
  const bool has_user = at != std::string::npos && at >= start;
  if (password.empty()) {
    // A user without a password is for the mechanisms that need none (a client
    // certificate, Kerberos, AWS); for the others libmongoc 1.23 crashes on it.
    const bool passwordless = uri.find("authMechanism=MONGODB-X509") != std::string::npos ||
                              uri.find("authMechanism=GSSAPI") != std::string::npos ||
                              uri.find("authMechanism=MONGODB-AWS") != std::string::npos;
    if (has_user && !passwordless) {
      return fail(
          "[mongo] uri names a user but no password was given: set [mongo] password_file or "
          "the mongodb-password credential");
    }
    return uri;
  }
  if (!has_user) {
    return fail("[mongo] uri needs a user name (mongodb://USER@host/...) to go with the password");
  }
  return uri.substr(0, at) + ":" + encode_userinfo(password) + uri.substr(at);
}

}  // namespace

std::string mongo_uri_with_reply_timeout(std::string uri, int ms) {
  std::string lower = uri;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.find("sockettimeoutms=") != std::string::npos) return uri;
  const std::string option = "socketTimeoutMS=" + std::to_string(ms);
  if (uri.find('?') != std::string::npos) return uri + "&" + option;
  // mongodb://host/db or mongodb://host: the options come after the path's slash.
  const auto hosts = uri.find("://");
  if (hosts == std::string::npos || uri.find('/', hosts + 3) == std::string::npos) uri += "/";
  return uri + "?" + option;
}

Expected<Backend> open_backend(const ServerConfig& config) {
  Backend backend;
  // The state directory holds the token key (and, on sqlite, the store).
  std::error_code ignored;
  std::filesystem::create_directories(config.state_dir, ignored);
  if (config.store_backend == "sqlite") {
    auto store = SqliteStore::open(config.store_path);
    if (!store) return Unexpected{store.error()};
    backend.store = std::move(*store);
    backend.limiter =
        std::make_unique<TokenBucketLimiter>(config.rate_limit, config.tenant_rate_limits);
    backend.description = "sqlite " + config.store_path;
    return backend;
  }
  auto mongo_password =
      optional_password(config.mongo_password_file, "mongodb-password", "MongoDB password");
  if (!mongo_password) return Unexpected{mongo_password.error()};
  auto uri = mongo_uri_with_password(config.mongo_uri, *mongo_password);
  if (!uri) return Unexpected{uri.error()};
  auto store = MongoStore::open(*uri, config.lease);
  if (!store) return Unexpected{store.error()};

  auto endpoint = redis::parse_redis_url(config.redis_url);
  if (!endpoint) return fail("[redis] url: " + endpoint.error());
  auto redis_password =
      optional_password(config.redis_password_file, "redis-password", "Redis password");
  if (!redis_password) return Unexpected{redis_password.error()};
  endpoint->password = *redis_password;
  endpoint->prefix = config.redis_prefix;
  // One idle connection kept per thread that may use Redis at once (HTTP threads, engine
  // workers, and a few for the lease keeper and maintenance), so that a busy thread does not
  // connect per command.
  const std::size_t connections =
      std::max<std::size_t>(64, config.http.threads + config.workers + 4);
  backend.redis = std::make_shared<redis::Client>(*endpoint, std::chrono::seconds(1), connections);
  (*store)->attach_queue(
      std::make_shared<RedisWorkStream>(backend.redis, (*store)->worker(), config.lease));
  (*store)->attach_revocations(std::make_shared<RedisRevocations>(backend.redis));
  (*store)->attach_answers(std::make_shared<RedisAnswerCache>(backend.redis));
  (*store)->attach_changes(std::make_shared<RedisChanges>(backend.redis));
  backend.store = std::move(*store);
  backend.auth_failures = std::make_shared<RedisAuthFailures>(backend.redis);
  backend.limiter = std::make_unique<RedisRateLimiter>(*backend.redis, config.rate_limit,
                                                       config.tenant_rate_limits);
  backend.dependencies.emplace_back("redis", [redis = backend.redis]() -> Status {
    auto pong = redis->command({"PING"});
    if (!pong) return Unexpected{pong.error()};
    return {};
  });
  const auto without_options = config.mongo_uri.substr(0, config.mongo_uri.find('?'));
  backend.description = "redis+mongo " + config.redis_url + " " + without_options;
  return backend;
}

}  // namespace stargate::server
