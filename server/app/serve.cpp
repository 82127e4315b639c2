// `stargate-server serve`: startup order, signals, housekeeping and shutdown.
#include "server/app/serve.hpp"

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

#include "server/app/state_files.hpp"
#include "server/engine/engine.hpp"
#include "server/engine/handlers/registry.hpp"
#include "server/gateway/auth.hpp"
#include "server/gateway/http_api.hpp"
#include "server/store/sqlite/sqlite_store.hpp"
#include "shared/codec.hpp"
#include "shared/logging.hpp"
#include "shared/version.hpp"

namespace stargate::server {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;

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
    log_error_lines("configuration: ", config.error());
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
  Engine engine(**store,
                make_handlers(config->process_types, {config->order, config->shipping, **store}),
                config->workers, &metrics, config->stuck_after);
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

}  // namespace stargate::server
