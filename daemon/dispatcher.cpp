// Dispatcher: sending and polling on Asio timers.
#include "daemon/dispatcher.hpp"

#include <map>
#include <random>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "daemon/schedule.hpp"

namespace stargate::daemon {

namespace asio = boost::asio;

namespace {

// Threads that make blocking HTTP calls: one sender plus pollers.
constexpr std::size_t kBlockingThreads = 4;

nlohmann::json rejection_error(const GatewayReply& reply) {
  if (reply.body.is_object() && reply.body.contains("error") && reply.body["error"].is_string()) {
    return {{"code", reply.body["error"]},
            {"message", reply.body.value("message", std::string())},
            {"details", {{"httpStatus", reply.status}}}};
  }
  return {{"code", "HTTP_" + std::to_string(reply.status)},
          {"message", reply.error},
          {"details", {{"httpStatus", reply.status}}}};
}

}  // namespace

struct Dispatcher::Impl : std::enable_shared_from_this<Impl> {
  struct Poll {
    explicit Poll(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::string process_id;
    TimePoint accepted_at{};
    int failures = 0;
    PollPhase phase = PollPhase::kFast;
    bool timeout_warned = false;
  };

  asio::io_context& io;
  Queue& queue;
  Gateway& gateway;
  const DaemonConfig& config;
  asio::thread_pool blocking{kBlockingThreads};
  asio::steady_timer send_timer;
  std::map<std::string, std::unique_ptr<Poll>> polls;
  std::function<void(const std::string&)> listener;
  std::mt19937_64 random{std::random_device{}()};

  bool stopped = false;
  bool sending = false;  // a submit is in flight or waiting out a backoff
  bool backing_off = false;
  int send_failures = 0;
  std::string last_error;
  TimePoint last_success{};

  Impl(asio::io_context& i, Queue& q, Gateway& g, const DaemonConfig& c)
      : io(i), queue(q), gateway(g), config(c), send_timer(i) {}

  void changed(const std::string& id) {
    if (listener) listener(id);
  }

  // Runs `call` on the blocking pool, then `done(result)` on the loop.
  template <typename Call, typename Done>
  void off_loop(Call call, Done done) {
    auto self = shared_from_this();
    asio::post(blocking, [self, call = std::move(call), done = std::move(done)]() mutable {
      auto result = call();
      asio::post(self->io, [self, result = std::move(result), done = std::move(done)]() mutable {
        if (!self->stopped) done(std::move(result));
      });
    });
  }

  // --- sending ---

  void send_next() {
    if (stopped || sending) return;
    auto next = queue.next_queued();
    if (!next) {
      spdlog::error("queue: {}", next.error());
      return;
    }
    if (!next->has_value()) return;
    const LocalRecord record = std::move(**next);
    sending = true;
    SubmitRequest request{record.client_process_id, record.process_type, record.data,
                          record.idempotency_key};
    spdlog::debug("send {}: attempt {}", record.client_process_id, record.attempts + 1);
    off_loop([this, request] { return gateway.submit(request); },
             [this, id = record.client_process_id](GatewayReply reply) {
               on_submitted(id, std::move(reply));
             });
  }

  void on_submitted(const std::string& id, GatewayReply reply) {
    if (reply.outcome == Outcome::kOk) {
      auto accepted = parse_accepted(reply.body);
      if (!accepted) {
        reply.outcome = Outcome::kTransient;
        reply.error = "gateway's 202 answer is unreadable: " + accepted.error();
      } else {
        send_succeeded();
        if (auto saved = queue.mark_accepted(id, *accepted); !saved) {
          spdlog::error("send {}: {}", id, saved.error());
        } else {
          spdlog::info("send {}: accepted as {}", id, accepted->process_id);
          start_polling(id, accepted->process_id, now_utc());
          changed(id);
        }
        sending = false;
        send_next();
        return;
      }
    }
    if (reply.outcome == Outcome::kPermanent) {
      send_succeeded();
      spdlog::warn("send {}: rejected by the gateway: {}", id, reply.error);
      if (auto saved = queue.mark_rejected(id, rejection_error(reply)); !saved) {
        spdlog::error("send {}: {}", id, saved.error());
      }
      changed(id);
      sending = false;
      send_next();
      return;
    }
    // Transient (and a 401 that persisted through a token renewal): keep it, retry later.
    ++send_failures;
    last_error = reply.error;
    if (auto saved = queue.record_send_failure(id, reply.error); !saved) {
      spdlog::error("send {}: {}", id, saved.error());
    }
    changed(id);
    Duration delay = backoff_with_jitter(config.queue.retry_initial, config.queue.retry_max,
                                         send_failures, 0.2, random);
    if (reply.retry_after && *reply.retry_after > delay) delay = *reply.retry_after;
    if (send_failures == config.polling.alert_after) {
      spdlog::critical(
          "gateway unreachable: {} sends failed in a row, last: {}; requests stay "
          "queued and are sent when it is back",
          send_failures, reply.error);
    } else {
      spdlog::warn("send {}: {}; retrying in {}", id, reply.error, format_duration(delay));
    }
    backing_off = true;
    send_timer.expires_after(delay);
    send_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;
      self->backing_off = false;
      self->sending = false;
      self->send_next();
    });
  }

  void send_succeeded() {
    if (send_failures >= config.polling.alert_after) {
      spdlog::info("gateway reachable again after {} failed sends", send_failures);
    }
    send_failures = 0;
    last_error.clear();
    last_success = now_utc();
  }

  // --- polling ---

  void start_polling(const std::string& id, const std::string& process_id, TimePoint accepted_at) {
    auto poll = std::make_unique<Poll>(io);
    poll->process_id = process_id;
    poll->accepted_at = accepted_at;
    auto& entry = polls[id];
    if (entry) entry->timer.cancel();
    entry = std::move(poll);
    schedule_poll(id, Duration::zero());  // at once after the 202 (seed 000 §3)
  }

  void schedule_poll(const std::string& id, Duration delay) {
    const auto it = polls.find(id);
    if (it == polls.end()) return;
    it->second->timer.expires_after(delay);
    it->second->timer.async_wait(
        [self = shared_from_this(), id](const boost::system::error_code& ec) {
          if (ec || self->stopped) return;
          self->poll_now(id);
        });
  }

  void poll_now(const std::string& id) {
    const auto it = polls.find(id);
    if (it == polls.end()) return;
    off_loop(
        [this, id, process_id = it->second->process_id] { return gateway.status(process_id, id); },
        [this, id](GatewayReply reply) { on_polled(id, std::move(reply)); });
  }

  void on_polled(const std::string& id, GatewayReply reply) {
    const auto it = polls.find(id);
    if (it == polls.end()) return;
    Poll& poll = *it->second;
    if (reply.outcome == Outcome::kOk) {
      auto view = parse_process_view(reply.body);
      if (!view) {
        reply.outcome = Outcome::kTransient;
        reply.error = "unreadable status answer: " + view.error();
      } else {
        poll_succeeded(id, poll, *view);
        return;
      }
    }
    ++poll.failures;
    last_error = reply.error;
    if (auto saved = queue.record_poll_failure(id, reply.error); !saved) {
      spdlog::error("poll {}: {}", id, saved.error());
    }
    const Duration delay =
        backoff(config.polling.backoff_initial, config.polling.backoff_max, poll.failures);
    if (poll.failures == config.polling.alert_after) {
      spdlog::critical("poll {} ({}): {} polls failed in a row, last: {}", id, poll.process_id,
                       poll.failures, reply.error);
    } else {
      spdlog::warn("poll {} ({}): {}; retrying in {}", id, poll.process_id, reply.error,
                   format_duration(delay));
    }
    schedule_poll(id, delay);
  }

  void poll_succeeded(const std::string& id, Poll& poll, const ProcessView& view) {
    poll.failures = 0;
    last_success = now_utc();
    auto before = queue.get(id);
    const LocalState old_state =
        before && before->has_value() ? (*before)->state : LocalState::kAccepted;
    if (auto saved = queue.apply_status(id, view); !saved) {
      // A status that does not move forward (an older answer, say): keep polling.
      spdlog::debug("poll {}: {}", id, saved.error());
    } else {
      const LocalState state = to_local_state(view.status);
      if (state != old_state) {
        spdlog::info("process {} ({}): {} -> {}", id, poll.process_id, to_string(old_state),
                     to_string(state));
      }
      changed(id);
      if (is_terminal(state)) {
        polls.erase(id);
        return;
      }
    }
    const Duration age = std::chrono::duration_cast<Duration>(now_utc() - poll.accepted_at);
    const PollPhase phase = poll_phase(config.polling, age);
    if (phase != poll.phase) {
      spdlog::info("process {} ({}): polling interval {} -> {}", id, poll.process_id,
                   format_duration(config.polling.fast_interval),
                   format_duration(config.polling.slow_interval));
      poll.phase = phase;
    }
    const std::string type = before && before->has_value() ? (*before)->process_type : "";
    if (!poll.timeout_warned && age >= config.timeout_for(type)) {
      poll.timeout_warned = true;
      spdlog::warn("process {} ({}): not finished after {}; still polling every {}", id,
                   poll.process_id, format_duration(config.timeout_for(type)),
                   format_duration(config.polling.slow_interval));
    }
    schedule_poll(id, poll_interval(config.polling, age));
  }
};

Dispatcher::Dispatcher(asio::io_context& io, Queue& queue, Gateway& gateway,
                       const DaemonConfig& config)
    : impl_(std::make_shared<Impl>(io, queue, gateway, config)) {}

Dispatcher::~Dispatcher() {
  stop();
}

void Dispatcher::start() {
  auto active = impl_->queue.active();
  if (!active) {
    spdlog::error("queue: {}", active.error());
  } else {
    for (const auto& record : *active) {
      impl_->start_polling(record.client_process_id, record.process_id,
                           record.submitted_at.value_or(record.created_at));
    }
    if (!active->empty()) spdlog::info("resuming polling of {} processes", active->size());
  }
  impl_->send_next();
}

void Dispatcher::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->send_timer.cancel();
  for (auto& [id, poll] : impl_->polls)
    poll->timer.cancel();
  // Calls already running finish (bounded by the gateway timeouts); queued ones are dropped.
  impl_->blocking.stop();
  impl_->blocking.join();
}

void Dispatcher::kick() {
  impl_->send_next();
}

void Dispatcher::flush() {
  if (impl_->backing_off) {
    impl_->send_timer.cancel();
    impl_->backing_off = false;
    impl_->sending = false;
  }
  impl_->send_next();
}

void Dispatcher::set_listener(std::function<void(const std::string&)> listener) {
  impl_->listener = std::move(listener);
}

DispatcherHealth Dispatcher::health() const {
  DispatcherHealth health;
  health.consecutive_failures = impl_->send_failures;
  health.degraded = impl_->send_failures >= impl_->config.polling.alert_after;
  health.last_error = impl_->last_error;
  if (impl_->last_success != TimePoint{})
    health.last_success = format_timestamp(impl_->last_success);
  health.active_polls = impl_->polls.size();
  return health;
}

}  // namespace stargate::daemon
