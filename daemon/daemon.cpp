// Wiring of the daemon's parts on one Asio event loop.
#include "daemon/daemon.hpp"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/config.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/gateway.hpp"
#include "daemon/hooks.hpp"
#include "daemon/local_api.hpp"
#include "daemon/local_routes.hpp"
#include "daemon/queue.hpp"
#include "shared/logging.hpp"
#include "shared/version.hpp"

namespace stargate::daemon {

namespace asio = boost::asio;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;

// Keeps systemd informed: STATUS= every few seconds, WATCHDOG=1 at half the watchdog period.
class SystemdNotifier {
 public:
  SystemdNotifier(asio::io_context& io, Queue& queue, Dispatcher& dispatcher)
      : timer_(io), queue_(queue), dispatcher_(dispatcher) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
      period_ = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::microseconds(usec / 2));
      watchdog_ = true;
    }
  }

  void ready() {
    sd_notify(0, "READY=1");
    tick();
  }

  void stopping() {
    timer_.cancel();
    sd_notify(0, "STOPPING=1");
  }

 private:
  void tick() {
    const auto queued = queue_.count(LocalState::kQueued);
    const auto health = dispatcher_.stats();
    const std::string status = "STATUS=" + std::to_string(queued ? *queued : 0) + " queued, " +
                               std::to_string(health.active_polls) + " active" +
                               (!health.queue_error.empty() ? ", queue file not writable"
                                : health.degraded           ? ", gateway unreachable"
                                                            : "");
    sd_notify(0, watchdog_ ? (status + "\nWATCHDOG=1").c_str() : status.c_str());
    timer_.expires_after(std::min<Duration>(period_, std::chrono::seconds(5)));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) tick();
    });
  }

  asio::steady_timer timer_;
  Queue& queue_;
  Dispatcher& dispatcher_;
  bool watchdog_ = false;
  Duration period_ = std::chrono::seconds(5);
};

// SIGHUP: re-read the file and apply what can change while running.
void reload(const DaemonOptions& options, DaemonConfig& config) {
  auto fresh = load_daemon_config(options.config_path);
  if (!fresh) {
    log_error_lines("reload: configuration not changed: ", fresh.error());
    return;
  }
  if (fresh->polling.fast_interval != config.polling.fast_interval ||
      fresh->polling.slow_interval != config.polling.slow_interval ||
      fresh->polling.fast_phase != config.polling.fast_phase ||
      fresh->polling.timeout != config.polling.timeout) {
    spdlog::info(
        "reload: polling fast {} for {}, then slow {}, timeout {}",
        format_duration(fresh->polling.fast_interval), format_duration(fresh->polling.fast_phase),
        format_duration(fresh->polling.slow_interval), format_duration(fresh->polling.timeout));
  }
  if (fresh->polling.mode != config.polling.mode) {
    spdlog::warn("reload: [polling] mode changes only on restart");
    fresh->polling.mode = config.polling.mode;
  }
  config.polling = fresh->polling;
  config.queue.retry_initial = fresh->queue.retry_initial;
  config.queue.retry_max = fresh->queue.retry_max;
  if (fresh->process_types.size() != config.process_types.size()) {
    spdlog::info("reload: {} process types configured", fresh->process_types.size());
  }
  config.process_types = fresh->process_types;
  if (options.log_level.empty() && fresh->log_level != config.log_level) {
    if (auto set = set_log_level(fresh->log_level); set) {
      spdlog::info("reload: log level {} -> {}", config.log_level, fresh->log_level);
      config.log_level = fresh->log_level;
    }
  }
  if (fresh->gateway.url != config.gateway.url || fresh->socket.path != config.socket.path ||
      fresh->queue.path != config.queue.path ||
      fresh->credentials.client_id != config.credentials.client_id) {
    spdlog::warn("reload: gateway, credentials, queue and socket settings change only on restart");
  }
}

}  // namespace

int run(const DaemonOptions& options) {
  auto format = parse_log_format(options.log_format);
  if (!format) {
    std::fprintf(stderr, "stargated: %s\n", format.error().c_str());
    return 2;
  }
  auto loaded = load_daemon_config(options.config_path);
  if (!loaded) {
    std::fprintf(stderr, "stargated: invalid configuration:\n%s", loaded.error().c_str());
    if (loaded.error().empty() || loaded.error().back() != '\n') std::fputc('\n', stderr);
    return kExitFailure;
  }
  DaemonConfig config = std::move(*loaded);
  if (!options.socket_path.empty()) config.socket.path = options.socket_path;
  if (!options.log_level.empty()) config.log_level = options.log_level;
  if (auto logging = setup_logging({*format, config.log_level, "stargated"}); !logging) {
    std::fprintf(stderr, "stargated: %s\n", logging.error().c_str());
    return kExitFailure;
  }
  if (options.check_config) {
    if (auto secret = read_client_secret(config.credentials.client_secret_file); !secret) {
      std::fprintf(stderr, "stargated: %s\n", secret.error().c_str());
      return kExitFailure;
    }
    std::printf("%s: configuration OK\n", options.config_path.c_str());
    return kExitOk;
  }

  SystemClock clock;
  auto queue = Queue::open(config.queue.path, clock);
  if (!queue) {
    // Never replaced or repaired here: it may hold requests not yet sent.
    spdlog::error(
        "cannot open the queue {}: {} (move the file aside to start with an empty "
        "queue; its requests would then not be sent)",
        config.queue.path, queue.error());
    return kExitFailure;
  }
  auto gateway = make_http_gateway(config.gateway, config.credentials);
  if (!gateway) {
    spdlog::error("{}", gateway.error());
    return kExitFailure;
  }

  asio::io_context io;
  HookRunner hooks(io, **queue, config);
  Dispatcher dispatcher(io, **queue, **gateway, hooks, config);
  LocalRoutes routes(io, **queue, dispatcher, **gateway, config);
  dispatcher.set_listener([&routes](const std::string& id) { routes.changed(id); });
  LocalApi api(io, routes);
  if (auto listening = api.listen(config.socket); !listening) {
    spdlog::error("{}", listening.error());
    return kExitFailure;
  }
  SystemdNotifier notifier(io, **queue, dispatcher);

  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  asio::signal_set hup(io, SIGHUP);
  bool stopping = false;
  stop_signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    stopping = true;
    spdlog::info("received {}: stopping; queued requests stay queued",
                 signal == SIGTERM ? "SIGTERM" : "SIGINT");
    notifier.stopping();
    api.close();
    routes.release_waiters();
    dispatcher.stop();
    hooks.stop();
    hup.cancel();
    io.stop();
  });
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec || stopping) return;
      spdlog::info("received SIGHUP: reloading {}", options.config_path);
      reload(options, config);
      // A rotated secret: its file (or credential) replaced, then a reload.
      if (auto reread = (*gateway)->reload_secret(); !reread) {
        spdlog::warn("reload: client secret not read again ({}); the one held stays",
                     reread.error());
      } else {
        spdlog::info("reload: client secret read again");
      }
      wait_hup();
    });
  };
  wait_hup();

  dispatcher.start();
  notifier.ready();
  spdlog::info("stargated {} ready: socket {}, queue {}, gateway {}", version(), api.path(),
               config.queue.path, config.gateway.url);
  io.run();
  dispatcher.stop();
  hooks.stop();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace stargate::daemon
