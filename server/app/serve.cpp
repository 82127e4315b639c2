// `stargate-server serve`: startup order, signals, housekeeping and shutdown.
#include "server/app/serve.hpp"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "server/app/backends.hpp"
#include "server/app/state_files.hpp"
#include "server/engine/engine.hpp"
#include "server/engine/handlers/registry.hpp"
#include "server/gateway/auth.hpp"
#include "server/gateway/http_api.hpp"
#include "server/store/mongo/mongo_store.hpp"
#include "shared/codec.hpp"
#include "shared/logging.hpp"
#include "shared/version.hpp"

namespace stargate::server {
namespace {

Expected<TokenSigner> make_signer(const ServerConfig& config) {
  auto algorithm = parse_token_algorithm(config.token_algorithm);
  if (!algorithm) return Unexpected{algorithm.error()};
  if (*algorithm == TokenAlgorithm::kHS256) {
    return TokenSigner::from_key_file(config.key_file, config.issuer);
  }
  return TokenSigner::from_pem_files(*algorithm, config.private_key_file, config.public_key_file,
                                     config.issuer);
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

// Keeps systemd informed (Type=notify): READY=1 once serving, STATUS= and WATCHDOG=1 from
// then on, STOPPING=1 at the end. Nothing happens outside systemd.
class SystemdNotifier {
 public:
  explicit SystemdNotifier(std::function<std::string()> status) : status_(std::move(status)) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
      watchdog_ = true;
      period_ = std::min<Duration>(
          std::chrono::duration_cast<Duration>(std::chrono::microseconds(usec / 2)), period_);
    }
  }
  ~SystemdNotifier() { stop(); }

  void ready() {
    sd_notify(0, "READY=1");
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      do {
        const std::string message = "STATUS=" + status_() + (watchdog_ ? "\nWATCHDOG=1" : "");
        sd_notify(0, message.c_str());
      } while (!wake_.wait_for(lock, period_, [&] { return stopping_; }));
    });
  }

  // Around a SIGHUP reload, so that `systemctl reload` waits for it to finish.
  void reloading() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                      static_cast<unsigned long long>(now.tv_nsec / 1000);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
  }
  void reloaded() { sd_notify(0, "READY=1"); }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    sd_notify(0, "STOPPING=1");
  }

 private:
  std::function<std::string()> status_;
  bool watchdog_ = false;
  Duration period_ = std::chrono::seconds(5);
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

const char* role_name(Role role) {
  switch (role) {
    case Role::kServe:
      return "serve";
    case Role::kGateway:
      return "gateway";
    case Role::kWorker:
      return "worker";
  }
  return "serve";
}

// SIGHUP: reads the configuration again and applies what can change while requests are
// served (rate limits and tiers, the log level, the TLS certificate and key, read again even
// when their paths are the same, the process types with [order] and [shipping]); names what
// needs a restart. A configuration with errors changes nothing.
void reload(const ServeOptions& options, ServerConfig& running, RateLimiter& limiter, HttpApi* api,
            Engine* engine, StockStore& stock) {
  auto next = load_server_config(options.config_path);
  if (!next) {
    log_error_lines("reload: configuration not applied: ", next.error());
    return;
  }
  if (!options.listen.empty()) {
    next->listen_host = running.listen_host;  // --listen wins, as at the start
    next->listen_port = running.listen_port;
  }
  std::vector<std::string> applied;
  if (next->rate_limit != running.rate_limit ||
      next->tenant_rate_limits != running.tenant_rate_limits) {
    limiter.set_limits(next->rate_limit, next->tenant_rate_limits);
    running.rate_limit = next->rate_limit;
    running.tenant_rate_limits = next->tenant_rate_limits;
    applied.push_back("rate limits");
  }
  if (next->log_level != running.log_level && !options.log_level_given) {
    if (set_log_level(next->log_level.empty() ? "info" : next->log_level)) {
      running.log_level = next->log_level;
      applied.push_back("log level");
    }
  }
  if (api != nullptr && api->uses_tls() && !next->tls_cert.empty()) {
    if (auto loaded = api->reload_tls(next->tls_cert, next->tls_key); !loaded) {
      spdlog::error("reload: {}; connections go on with the certificate they had", loaded.error());
    } else {
      running.tls_cert = next->tls_cert;
      running.tls_key = next->tls_key;
      applied.push_back("TLS certificate");
    }
  }
  if (next->process_types != running.process_types || next->order != running.order ||
      next->shipping != running.shipping) {
    // Processes running now finish with the settings they started with.
    if (engine != nullptr) {
      const auto kept = engine->set_handlers(
          make_handlers(next->process_types, {next->order, next->shipping, stock}));
      for (const auto& type : kept) {
        spdlog::warn(
            "reload: process type {} is no longer configured: requests for it are refused, the "
            "processes already accepted still run until the next start",
            type);
      }
    }
    if (api != nullptr) api->reload_process_types(*next);
    running.process_types = next->process_types;
    running.order = next->order;
    running.shipping = next->shipping;
    applied.push_back("process types");
  }
  std::string restart;
  for (const auto& what : changes_needing_restart(running, *next))
    restart += (restart.empty() ? "" : ", ") + what;
  std::string done;
  for (const auto& what : applied)
    done += (done.empty() ? "" : ", ") + what;
  spdlog::info("reload: applied {}{}", done.empty() ? std::string("nothing new") : done,
               restart.empty() ? std::string() : "; changed but needs a restart: " + restart);
  if (options.log_level_given && next->log_level != running.log_level) {
    spdlog::info("reload: [log] level not applied: --log-level was given");
  }
}

}  // namespace

int serve(const ServeOptions& options) {
  // Signals are taken by one thread with sigwait(); block them before any thread starts
  // (the store starts one) so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A handler program that closes its stdin early must not kill the server with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);

  const bool http = options.role != Role::kWorker;
  const bool engine_here = options.role != Role::kGateway;
  auto config = load_server_config(options.config_path);
  if (!config) {
    log_error_lines("configuration: ", config.error());
    return kExitError;
  }
  if (options.role != Role::kServe && config->store_backend != "redis+mongo") {
    spdlog::error(
        "stargate-server {} shares its work with other processes: it needs [store] backend = "
        "\"redis+mongo\" (on one machine, `stargate-server serve` runs both)",
        role_name(options.role));
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
  if (!options.log_level_given && !config->log_level.empty()) {
    (void)set_log_level(config->log_level);  // checked with the configuration
  }
  if (http && config->tls_cert.empty() && !config->allow_plain_http &&
      !is_loopback_host(config->listen_host)) {
    spdlog::error(
        "refusing plain HTTP on {}: configure [server] tls_cert and tls_key, or set "
        "allow_plain_http = true (for example behind a TLS-terminating proxy)",
        config->listen_host);
    return kExitError;
  }
  auto backend = open_backend(*config);
  if (!backend) {
    spdlog::error("{}", backend.error());
    return kExitError;
  }
  Store& store = *backend->store;
  std::optional<TokenSigner> signer;
  if (http) {
    auto made = make_signer(*config);
    if (!made) {
      spdlog::error("{}", made.error());
      return kExitError;
    }
    signer.emplace(std::move(*made));
  }

  Metrics metrics;
  std::optional<Engine> engine;
  if (engine_here) {
    engine.emplace(store,
                   make_handlers(config->process_types, {config->order, config->shipping, store}),
                   config->workers, &metrics, config->stuck_after);
  }
  AuditLog audit(store);
  std::optional<HttpApi> api;
  std::optional<int> port;
  if (http) {
    api.emplace(*config, store, engine ? &*engine : nullptr, *signer, *backend->limiter, audit,
                metrics, backend->dependencies);
    if (backend->auth_failures) api->share_auth_failures(backend->auth_failures);
    auto bound = api->bind(config->listen_host, config->listen_port);
    if (!bound) {
      spdlog::error("{}", bound.error());
      return kExitError;
    }
    port = *bound;
  }
  if (engine) {
    // A worker that cannot reach its store yet keeps trying instead of giving up: it is one
    // of several, and the engines may come up after it.
    for (int attempt = 1;; ++attempt) {
      auto started = engine->start();
      if (started) break;
      if (options.role == Role::kServe || attempt >= 60) {
        spdlog::error("engine: {}", started.error());
        return kExitError;
      }
      if (attempt == 1) spdlog::warn("engine: {}; trying again every second", started.error());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  if (port && !options.port_file.empty()) {
    std::error_code ignored;
    std::filesystem::remove(options.port_file, ignored);
    if (auto written = write_private_file(options.port_file, std::to_string(*port) + "\n");
        !written) {
      spdlog::error("--port-file: {}", written.error());
      return kExitError;
    }
  }
  if (api) {
    spdlog::info("stargate-server {} {} listening on {}://{}:{} (store {})", version(),
                 role_name(options.role), api->uses_tls() ? "https" : "http", config->listen_host,
                 *port, backend->description);
  } else {
    spdlog::info("stargate-server {} worker {} running (store {})", version(),
                 config->store_backend == "redis+mongo" ? static_cast<MongoStore&>(store).worker()
                                                        : std::string("-"),
                 backend->description);
  }

  std::optional<Maintenance> maintenance;
  if (engine) maintenance.emplace(store, *config);
  SystemdNotifier notifier([&] {
    std::string status = role_name(options.role);
    if (engine) {
      const auto health = engine->health();
      status += ", " + std::to_string(health.busy) + " of " + std::to_string(health.workers) +
                " workers busy";
    }
    return status;
  });
  notifier.ready();
  std::mutex done_mutex;
  std::condition_variable done_cv;
  bool done = false;
  ServerConfig running = *config;
  std::thread waiter([&] {
    int signal = 0;
    for (;;) {
      sigwait(&signals, &signal);
      if (signal != SIGHUP) break;
      notifier.reloading();
      reload(options, running, *backend->limiter, api ? &*api : nullptr,
             engine ? &*engine : nullptr, store);
      notifier.reloaded();
    }
    spdlog::info("received {}, shutting down", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    if (api) api->stop();
    std::lock_guard lock(done_mutex);
    done = true;
    done_cv.notify_all();
  });
  if (api) {
    api->serve();
    // serve() also returns when listening fails; wake the waiter so it can be joined.
    pthread_kill(waiter.native_handle(), SIGTERM);
  } else {
    std::unique_lock lock(done_mutex);
    done_cv.wait(lock, [&] { return done; });
  }
  waiter.join();
  notifier.stop();
  if (maintenance) maintenance->stop();
  if (engine) engine->stop();
  audit.stop();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace stargate::server
