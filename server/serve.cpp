// The serve command (signals, startup and shutdown order) and the client admin commands.
#include "server/serve.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "server/auth.hpp"
#include "server/builtin_handlers.hpp"
#include "server/engine.hpp"
#include "server/exec_handler.hpp"
#include "server/http_api.hpp"
#include "server/sqlite_store.hpp"
#include "shared/codec.hpp"
#include "shared/version.hpp"

namespace stargate::server {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;

// Writes `text` to a new file only the owner can read; refuses to replace an existing file.
Status write_private_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(path + ": " + std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return fail(path + ": write failed");
  return {};
}

Expected<std::unique_ptr<SqliteStore>> open_store(const ServerConfig& config) {
  std::error_code ignored;
  std::filesystem::create_directories(config.state_dir, ignored);
  return SqliteStore::open(config.store_path);
}

void audit_admin(Store& store, nlohmann::json fields) {
  if (auto appended = store.append_audit({{now_utc(), "admin", std::move(fields)}}); !appended) {
    std::fprintf(stderr, "stargate-server: warning: not audited: %s\n", appended.error().c_str());
  }
}

Expected<TokenSigner> make_signer(const ServerConfig& config) {
  auto algorithm = parse_token_algorithm(config.token_algorithm);
  if (!algorithm) return Unexpected{algorithm.error()};
  if (*algorithm == TokenAlgorithm::kHS256) {
    return TokenSigner::from_key_file(config.key_file, config.issuer);
  }
  return TokenSigner::from_pem_files(*algorithm, config.private_key_file, config.public_key_file,
                                     config.issuer);
}

std::map<std::string, std::shared_ptr<Handler>> make_handlers(const ServerConfig& config) {
  std::map<std::string, std::shared_ptr<Handler>> handlers;
  auto order = std::make_shared<OrderHandler>(config.order);
  auto shipping = std::make_shared<ShippingHandler>(config.shipping);
  for (const auto& [name, type] : config.process_types) {
    if (type.handler == "order") handlers[name] = order;
    if (type.handler == "shipping") handlers[name] = shipping;
    if (type.handler == "exec") {
      handlers[name] = std::make_shared<ExecHandler>(ExecSettings{type.command, type.timeout});
    }
  }
  return handlers;
}

// Periodic housekeeping on its own thread: forgets idempotency keys past their time.
class Maintenance {
 public:
  Maintenance(Store& store, const ServerConfig& config)
      : store_(store), config_(config), thread_([this] { loop(); }) {}
  ~Maintenance() { stop(); }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      if (auto pruned = store_.prune_idempotency_keys(now_utc() - config_.idempotency_ttl);
          !pruned) {
        spdlog::warn("maintenance: {}", pruned.error());
      } else if (*pruned > 0) {
        spdlog::info("maintenance: forgot {} idempotency keys older than {}", *pruned,
                     format_duration(config_.idempotency_ttl));
      }
      lock.lock();
      wake_.wait_for(lock, std::chrono::minutes(10), [&] { return stopping_; });
    }
  }

  Store& store_;
  const ServerConfig& config_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

int serve(const ServeOptions& options) {
  // Signals are taken by one thread with sigwait(); block them before any thread starts
  // (the store starts one) so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A handler program that closes its stdin early must not kill the server with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);

  auto config = load_server_config(options.config_path);
  if (!config) {
    spdlog::error("configuration: {}", config.error());
    return kExitError;
  }
  if (!options.listen.empty()) {
    auto address = parse_listen_address(options.listen);
    if (!address) {
      spdlog::error("--listen: {}", address.error());
      return kExitError;
    }
    std::tie(config->listen_host, config->listen_port) = *address;
  }
  if (config->tls_cert.empty() && !config->allow_plain_http &&
      !is_loopback_host(config->listen_host)) {
    spdlog::error(
        "refusing plain HTTP on {}: configure [server] tls_cert and tls_key, or set "
        "allow_plain_http = true (for example behind a TLS-terminating proxy)",
        config->listen_host);
    return kExitError;
  }
  auto store = open_store(*config);
  if (!store) {
    spdlog::error("{}", store.error());
    return kExitError;
  }
  auto signer = make_signer(*config);
  if (!signer) {
    spdlog::error("{}", signer.error());
    return kExitError;
  }

  Metrics metrics;
  Engine engine(**store, make_handlers(*config), config->workers, &metrics);
  TokenBucketLimiter limiter(config->rate_limit, config->tenant_rate_limits);
  AuditLog audit(**store);
  HttpApi api(*config, **store, engine, *signer, limiter, audit, metrics);
  auto port = api.bind(config->listen_host, config->listen_port);
  if (!port) {
    spdlog::error("{}", port.error());
    return kExitError;
  }
  if (auto started = engine.start(); !started) {
    spdlog::error("engine: {}", started.error());
    return kExitError;
  }
  if (!options.port_file.empty()) {
    std::error_code ignored;
    std::filesystem::remove(options.port_file, ignored);
    if (auto written = write_private_file(options.port_file, std::to_string(*port) + "\n");
        !written) {
      spdlog::error("--port-file: {}", written.error());
      return kExitError;
    }
  }
  spdlog::info("stargate-server {} listening on {}://{}:{} (store {})", version(),
               api.uses_tls() ? "https" : "http", config->listen_host, *port, config->store_path);

  Maintenance maintenance(**store, *config);
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("received {}, shutting down", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    api.stop();
  });
  api.serve();
  // serve() also returns when listening fails; wake the waiter so it can be joined.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  maintenance.stop();
  engine.stop();
  audit.stop();
  spdlog::info("stopped");
  return kExitOk;
}

int client_add(const ClientAddOptions& options) {
  auto config = load_server_config(options.config_path);
  if (!config) {
    std::fprintf(stderr, "stargate-server: configuration: %s\n", config.error().c_str());
    return kExitError;
  }
  if (options.tenant.empty() || !is_process_type_name(options.tenant)) {
    std::fprintf(stderr,
                 "stargate-server: --tenant must be 1-64 characters of a-z, 0-9, '_' and '-'\n");
    return 2;
  }
  for (const auto& type : options.process_types) {
    if (!is_process_type_name(type)) {
      std::fprintf(stderr, "stargate-server: invalid process type '%s'\n", type.c_str());
      return 2;
    }
  }
  auto store = open_store(*config);
  if (!store) {
    std::fprintf(stderr, "stargate-server: %s\n", store.error().c_str());
    return kExitError;
  }
  ClientRecord client;
  client.client_id = new_client_id();
  client.tenant = options.tenant;
  client.process_types = options.process_types;
  client.created_at = now_utc();
  const std::string secret = new_client_secret();
  auto hash = hash_secret(secret);
  if (!hash) {
    std::fprintf(stderr, "stargate-server: %s\n", hash.error().c_str());
    return kExitError;
  }
  client.secret_hash = *hash;
  if (!options.secret_file.empty()) {
    if (auto written = write_private_file(options.secret_file, secret + "\n"); !written) {
      std::fprintf(stderr, "stargate-server: --secret-file: %s\n", written.error().c_str());
      return kExitError;
    }
  }
  if (auto added = (*store)->add_client(client); !added) {
    std::fprintf(stderr, "stargate-server: %s\n", added.error().c_str());
    if (!options.secret_file.empty()) ::unlink(options.secret_file.c_str());
    return kExitError;
  }
  audit_admin(**store, {{"action", "client add"},
                        {"clientId", client.client_id},
                        {"tenant", client.tenant},
                        {"processTypes", client.process_types}});
  if (options.json) {
    nlohmann::json out = {{"clientId", client.client_id},
                          {"tenant", client.tenant},
                          {"processTypes", client.process_types}};
    if (options.secret_file.empty()) out["clientSecret"] = secret;
    std::printf("%s\n", out.dump().c_str());
  } else if (options.secret_file.empty()) {
    std::printf("client_id:     %s\nclient_secret: %s\n", client.client_id.c_str(), secret.c_str());
    std::fprintf(stderr, "The secret is shown once; store it now (it is kept only hashed).\n");
  } else {
    std::printf("%s\n", client.client_id.c_str());
  }
  return kExitOk;
}

int client_revoke(const std::string& config_path, const std::string& client_id) {
  auto config = load_server_config(config_path);
  if (!config) {
    std::fprintf(stderr, "stargate-server: configuration: %s\n", config.error().c_str());
    return kExitError;
  }
  auto store = open_store(*config);
  if (!store) {
    std::fprintf(stderr, "stargate-server: %s\n", store.error().c_str());
    return kExitError;
  }
  if (auto revoked = (*store)->revoke_client(client_id, now_utc()); !revoked) {
    std::fprintf(stderr, "stargate-server: %s\n", revoked.error().c_str());
    return kExitError;
  }
  audit_admin(**store, {{"action", "client revoke"}, {"clientId", client_id}});
  std::fprintf(stderr, "revoked %s: its tokens stop working at once\n", client_id.c_str());
  return kExitOk;
}

int audit_verify(const std::string& config_path) {
  auto config = load_server_config(config_path);
  if (!config) {
    std::fprintf(stderr, "stargate-server: configuration: %s\n", config.error().c_str());
    return kExitError;
  }
  auto store = open_store(*config);
  if (!store) {
    std::fprintf(stderr, "stargate-server: %s\n", store.error().c_str());
    return kExitError;
  }
  auto check = (*store)->verify_audit();
  if (!check) {
    std::fprintf(stderr, "stargate-server: %s\n", check.error().c_str());
    return kExitError;
  }
  if (!check->intact) {
    std::printf("audit trail BROKEN at record %lld: %s\n", static_cast<long long>(check->bad_seq),
                check->problem.c_str());
    return kExitError;
  }
  std::printf("audit trail intact: %lld records, head %s\n", static_cast<long long>(check->records),
              check->head_hash.c_str());
  return kExitOk;
}

int audit_export(const std::string& config_path, const std::string& since_text) {
  TimePoint since{};
  if (auto ago = parse_duration(since_text)) {
    since = now_utc() - *ago;
  } else if (auto time = parse_timestamp(since_text)) {
    since = *time;
  } else {
    std::fprintf(stderr,
                 "stargate-server: --since: expected a time (2026-01-14T12:00:00Z) or a "
                 "duration ago (24h), got '%s'\n",
                 since_text.substr(0, 64).c_str());
    return 2;
  }
  auto config = load_server_config(config_path);
  if (!config) {
    std::fprintf(stderr, "stargate-server: configuration: %s\n", config.error().c_str());
    return kExitError;
  }
  auto store = open_store(*config);
  if (!store) {
    std::fprintf(stderr, "stargate-server: %s\n", store.error().c_str());
    return kExitError;
  }
  auto exported = (*store)->export_audit(since, [](const AuditRecord& record) {
    auto line = nlohmann::json::parse(record.record, nullptr, false);
    if (line.is_discarded()) line = {{"unreadable", record.record}};
    line["prevHash"] = record.prev_hash;
    line["hash"] = record.hash;
    std::printf("%s\n",
                line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  });
  if (!exported) {
    std::fprintf(stderr, "stargate-server: %s\n", exported.error().c_str());
    return kExitError;
  }
  return kExitOk;
}

int client_list(const std::string& config_path, bool json) {
  auto config = load_server_config(config_path);
  if (!config) {
    std::fprintf(stderr, "stargate-server: configuration: %s\n", config.error().c_str());
    return kExitError;
  }
  auto store = open_store(*config);
  if (!store) {
    std::fprintf(stderr, "stargate-server: %s\n", store.error().c_str());
    return kExitError;
  }
  auto clients = (*store)->list_clients();
  if (!clients) {
    std::fprintf(stderr, "stargate-server: %s\n", clients.error().c_str());
    return kExitError;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& client : *clients) {
    if (json) {
      out.push_back({{"clientId", client.client_id},
                     {"tenant", client.tenant},
                     {"processTypes", client.process_types},
                     {"createdAt", format_timestamp(client.created_at)},
                     {"revoked", client.revoked}});
    } else {
      std::string types;
      for (const auto& t : client.process_types)
        types += (types.empty() ? "" : ",") + t;
      std::printf("%-22s %-16s %-24s %s%s\n", client.client_id.c_str(), client.tenant.c_str(),
                  types.c_str(), format_timestamp(client.created_at).c_str(),
                  client.revoked ? " revoked" : "");
    }
  }
  if (json) std::printf("%s\n", out.dump().c_str());
  return kExitOk;
}

}  // namespace stargate::server
