// Running on_complete hooks off the event loop.
#include "daemon/hooks.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "daemon/log_fields.hpp"
#include "shared/json.hpp"
#include "shared/subprocess.hpp"
#include "shared/text.hpp"

namespace stargate::daemon {

namespace asio = boost::asio;

struct HookRunner::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& i, Queue& q, const DaemonConfig& c, HookRunner& o)
      : io(i), queue(q), config(c), owner(o) {}

  asio::io_context& io;
  Queue& queue;
  const DaemonConfig& config;
  HookRunner& owner;
  asio::thread_pool pool{2};      // hooks run beside each other, never on the loop
  std::set<std::string> running;  // loop thread only
  std::atomic<bool> stopping{false};

  void done(const std::string& id) {
    if (auto saved = queue.mark_hook_done(id); !saved) {
      spdlog::error("hook {}: cannot record that it ran: {}", id, saved.error());
    }
  }

  void run(const LocalRecord& record) {
    const auto type = config.process_types.find(record.process_type);
    if (type == config.process_types.end() || type->second.on_complete.empty()) {
      done(record.client_process_id);  // nothing to deliver
      return;
    }
    if (!running.insert(record.client_process_id).second) return;  // already under way
    SubprocessOptions options;
    options.argv = {"/bin/sh", "-c", type->second.on_complete};
    options.input = dump_json(to_json(record)) + "\n";
    options.environment = {"STARGATE_CLIENT_PROCESS_ID=" + record.client_process_id,
                           "STARGATE_PROCESS_ID=" + record.process_id,
                           "STARGATE_STATE=" + std::string(to_string(record.state))};
    options.timeout = type->second.on_complete_timeout;
    options.max_output_bytes = 64 * 1024;
    options.keep_going = [self = shared_from_this()] { return !self->stopping.load(); };
    LogScope logging(request_log_fields(record.client_process_id, record.process_id));
    spdlog::info("hook {}: running on_complete for state {}", record.client_process_id,
                 to_string(record.state));
    auto self = shared_from_this();
    asio::post(pool, [self, options, id = record.client_process_id] {
      auto result = run_subprocess(options);
      asio::post(self->io, [self, id, result] { self->finished(id, result); });
    });
  }

  void finished(const std::string& id, const SubprocessResult& result) {
    running.erase(id);
    LogScope logging(request_log_fields(id));
    using Kind = SubprocessResult::Kind;
    if (result.kind == Kind::kStopped) {
      spdlog::info("hook {}: interrupted by shutdown; it runs again at the next start", id);
      return;
    }
    if (result.kind == Kind::kExited && result.exit_code == 0) {
      ++owner.succeeded_;
      spdlog::info("hook {}: delivered", id);
    } else {
      ++owner.failed_;
      std::string why;
      switch (result.kind) {
        case Kind::kExited:
          why = "exit status " + std::to_string(result.exit_code);
          break;
        case Kind::kSignaled:
          why = "killed by signal " + std::to_string(result.signal);
          break;
        case Kind::kTimedOut:
          why = "did not finish in time";
          break;
        case Kind::kTooMuchOutput:
          why = "printed too much";
          break;
        default:
          why = result.error;
          break;
      }
      // Recorded as run all the same: a hook that fails is reported, not repeated for ever.
      spdlog::error("hook {}: on_complete failed ({}){}", id, why,
                    result.errors.empty() ? "" : ": " + shorten_message(result.errors));
    }
    done(id);
  }
};

HookRunner::HookRunner(asio::io_context& io, Queue& queue, const DaemonConfig& config)
    : impl_(std::make_shared<Impl>(io, queue, config, *this)) {}

HookRunner::~HookRunner() {
  stop();
}

void HookRunner::resume() {
  auto due = impl_->queue.hooks_due();
  if (!due) {
    spdlog::error("hooks: {}", due.error());
    return;
  }
  for (const auto& record : *due)
    impl_->run(record);
}

void HookRunner::terminal(const LocalRecord& record) {
  impl_->run(record);
}

void HookRunner::stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->pool.join();
}

}  // namespace stargate::daemon
