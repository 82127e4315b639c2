// Dispatcher: sending, polling, retry and cancel, on Asio timers.
#include "daemon/dispatcher.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "daemon/log_fields.hpp"
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
    std::string process_type;
    TimePoint accepted_at{};
    int failures = 0;
    PollPhase phase = PollPhase::kFast;
    bool timeout_warned = false;
    bool resync = false;  // read once now that the feed starts (changes before its cursor)
  };

  // Where changes come from.
  enum class Feed {
    kDeciding,  // at start: waiting for the token answer to say whether the feed is offered
    kStarting,  // asking the feed for a cursor; every process is read once after that
    kActive,    // the feed reports changes; no process is polled on its own
    kSchedule,  // each process is polled on the seed's schedule
  };

  asio::io_context& io;
  Queue& queue;
  Gateway& gateway;
  HookRunner& hooks;
  const DaemonConfig& config;
  asio::thread_pool blocking{kBlockingThreads};
  asio::steady_timer send_timer;
  asio::steady_timer prune_timer;
  asio::steady_timer feed_timer;
  asio::steady_timer watch_timer;
  std::map<std::string, std::unique_ptr<Poll>> polls;
  std::map<std::string, std::string> by_process;  // processId -> clientProcessId, of polls
  std::function<void(const std::string&)> listener;
  std::mt19937_64 random{std::random_device{}()};

  bool stopped = false;
  bool sending = false;  // a submit is in flight or waiting out a backoff
  bool backing_off = false;
  std::string in_flight;  // the request being submitted right now
  // The feed may have reported changes of the request being sent before its 202 came (or,
  // for the first request sent after a start, before a crash): read it once after the
  // 202, and save no cursor past those changes until then.
  bool read_after_202 = false;
  bool first_send = true;
  TimePoint started_at = now_utc();
  int send_failures = 0;
  int local_failures = 0;   // answers the queue file could not record, in a row
  std::string queue_error;  // why the last of them could not; empty after a success
  std::string last_error;
  TimePoint last_success{};
  DispatcherStats counters;

  Feed feed = Feed::kSchedule;
  std::string cursor;  // of the change feed; empty: none yet
  bool feed_in_flight = false;
  bool feed_pausing = false;  // feed_timer runs: the next request waits for it
  int feed_failures = 0;
  // The gateway answered 404 for the feed: poll on the schedule, and look again later.
  std::optional<std::chrono::steady_clock::time_point> feed_missing_since;
  static constexpr auto kLookAgainAfter = std::chrono::minutes(10);

  Impl(asio::io_context& i, Queue& q, Gateway& g, HookRunner& h, const DaemonConfig& c)
      : io(i),
        queue(q),
        gateway(g),
        hooks(h),
        config(c),
        send_timer(i),
        prune_timer(i),
        feed_timer(i),
        watch_timer(i) {}

  // A record changed: tell the listener (waiters) and, when it ended, the hooks.
  void changed(const std::string& id) {
    if (listener) listener(id);
    auto record = queue.get(id);
    if (record && record->has_value() && is_terminal((*record)->state)) {
      hooks.terminal(**record);
    }
  }

  // Runs `call` on the blocking pool, then `done(result)` on the loop. The pool is ours, and
  // stop() drops the calls it has not started: those must not own us (a cycle), so they
  // hold a weak reference.
  template <typename Call, typename Done>
  void off_loop(Call call, Done done) {
    std::weak_ptr<Impl> weak = shared_from_this();
    asio::post(blocking, [weak, call = std::move(call), done = std::move(done)]() mutable {
      auto self = weak.lock();
      if (!self) return;
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
    in_flight = record.client_process_id;
    // The oldest request queued before this start may have reached the gateway before a
    // crash, and the saved cursor may be past its changes.
    if (first_send && feed != Feed::kSchedule && record.created_at < started_at) {
      read_after_202 = true;
    }
    first_send = false;
    SubmitRequest request{record.client_process_id, record.process_type, record.data,
                          record.idempotency_key};
    LogScope logging(request_log_fields(record.client_process_id));
    spdlog::debug("send {}: attempt {}", record.client_process_id, record.attempts + 1);
    off_loop(
        [this, request] {
          LogScope on_this_thread(request_log_fields(request.client_process_id));
          return gateway.submit(request);
        },
        [this, id = record.client_process_id, type = record.process_type](GatewayReply reply) {
          on_submitted(id, type, std::move(reply));
        });
  }

  void on_submitted(const std::string& id, const std::string& process_type, GatewayReply reply) {
    in_flight.clear();
    LogScope logging(request_log_fields(id));
    if (reply.outcome == Outcome::kOk) {
      auto accepted = parse_accepted(reply.body);
      if (!accepted) {
        reply.outcome = Outcome::kTransient;
        reply.error = "gateway's 202 answer is unreadable: " + accepted.error();
      } else {
        log_fields().process_id = accepted->process_id;
        send_succeeded();
        ++counters.sends_accepted;
        if (auto saved = queue.mark_accepted(id, *accepted); !saved) {
          not_recorded(id, saved.error());
          return;
        }
        recorded();
        spdlog::info("send {}: accepted as {}", id, accepted->process_id);
        start_polling(id, accepted->process_id, process_type, now_utc());
        if (std::exchange(read_after_202, false) && feed != Feed::kSchedule) {
          polls.at(id)->resync = true;
          schedule_poll(id, Duration::zero());
        }
        changed(id);
        sending = false;
        send_next();
        return;
      }
    }
    if (reply.outcome == Outcome::kPermanent) {
      read_after_202 = false;  // refused: there is no process to read
      send_succeeded();
      ++counters.sends_rejected;
      spdlog::warn("send {}: rejected by the gateway: {}", id, reply.error);
      if (auto saved = queue.mark_rejected(id, rejection_error(reply)); !saved) {
        not_recorded(id, saved.error());
        return;
      }
      recorded();
      changed(id);
      sending = false;
      send_next();
      return;
    }
    // Transient (and a 401 that persisted through a token renewal): keep it, retry later.
    ++send_failures;
    ++counters.sends_failed;
    last_error = reply.error;
    if (auto saved = queue.record_send_failure(id, reply.error); !saved) {
      spdlog::error("send {}: {}", id, saved.error());
    }
    if (listener) listener(id);
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
    send_again_in(delay);
  }

  // The gateway answered but the queue file refused to record it (a full disk, say). The
  // request is still queued with its idempotency key, so sending it again is safe, but not
  // at once: that would hammer the gateway for as long as the disk stays full.
  void not_recorded(const std::string& id, const std::string& error) {
    ++local_failures;
    const Duration delay = backoff_with_jitter(config.queue.retry_initial, config.queue.retry_max,
                                               local_failures, 0.2, random);
    queue_error = error;
    spdlog::error("send {}: the gateway's answer cannot be recorded: {}; sending again in {}", id,
                  error, format_duration(delay));
    send_again_in(delay);
  }

  void recorded() {
    local_failures = 0;
    queue_error.clear();
  }

  void send_again_in(Duration delay) {
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

  void start_polling(const std::string& id, const std::string& process_id,
                     const std::string& process_type, TimePoint accepted_at) {
    auto poll = std::make_unique<Poll>(io);
    poll->process_id = process_id;
    poll->process_type = process_type;
    poll->accepted_at = accepted_at;
    auto& entry = polls[id];
    if (entry) {
      entry->timer.cancel();
      by_process.erase(entry->process_id);
    }
    entry = std::move(poll);
    by_process[process_id] = id;
    if (feed == Feed::kSchedule) {
      schedule_poll(id, Duration::zero());  // at once after the 202 (seed 000 §3)
    } else {
      request_feed();  // the feed reports its changes (idle while nothing was followed)
    }
  }

  void stop_polling(const std::string& id) {
    const auto it = polls.find(id);
    if (it == polls.end()) return;
    it->second->timer.cancel();
    by_process.erase(it->second->process_id);
    polls.erase(it);
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
        [this, id, process_id = it->second->process_id] {
          LogScope on_this_thread(request_log_fields(id, process_id));
          return gateway.status(process_id, id);
        },
        [this, id](GatewayReply reply) { on_polled(id, std::move(reply)); });
  }

  void on_polled(const std::string& id, GatewayReply reply) {
    const auto it = polls.find(id);
    if (it == polls.end()) return;
    Poll& poll = *it->second;
    LogScope logging(request_log_fields(id, poll.process_id));
    if (reply.outcome == Outcome::kOk) {
      auto view = parse_process_view(reply.body);
      if (!view) {
        reply.outcome = Outcome::kTransient;
        reply.error = "unreadable status answer: " + view.error();
      } else {
        ++counters.polls_ok;
        poll_succeeded(id, poll, *view);
        return;
      }
    }
    ++poll.failures;
    ++counters.polls_failed;
    last_error = reply.error;
    if (auto saved = queue.record_poll_failure(id, reply.error); !saved) {
      spdlog::error("poll {}: {}", id, saved.error());
    }
    Duration delay =
        backoff(config.polling.backoff_initial, config.polling.backoff_max, poll.failures);
    // A gateway that says when to come back (429, 503) is not asked sooner. (On a 200,
    // where RFC 9110 gives Retry-After no meaning, the schedule decides.)
    if (reply.retry_after && *reply.retry_after > delay) delay = *reply.retry_after;
    if (poll.failures == config.polling.alert_after) {
      spdlog::critical("poll {} ({}): {} polls failed in a row, last: {}", id, poll.process_id,
                       poll.failures, reply.error);
    } else {
      spdlog::warn("poll {} ({}): {}; retrying in {}", id, poll.process_id, reply.error,
                   format_duration(delay));
    }
    // While the feed reports changes only a process still to be read once is polled again.
    if (feed == Feed::kSchedule || poll.resync) schedule_poll(id, delay);
  }

  void poll_succeeded(const std::string& id, Poll& poll, const ProcessView& view) {
    poll.failures = 0;
    poll.resync = false;
    last_success = now_utc();
    if (!record_view(id, poll, view)) return;
    if (feed == Feed::kSchedule) {
      if (feed_may_start()) {
        begin_feed();
        return;
      }
      schedule_next_poll(id, poll);
    }
  }

  // Records what the gateway said of a process (a status answer or a feed entry); false when
  // the process is no longer followed (it ended, or its record is gone).
  bool record_view(const std::string& id, Poll& poll, const ProcessView& view) {
    LogScope logging(request_log_fields(id, poll.process_id));
    auto before = queue.get(id);
    if (!before || !before->has_value()) {
      stop_polling(id);  // pruned or gone: nothing left to follow
      return false;
    }
    const LocalRecord& record = **before;
    auto saved = queue.apply_status(id, view);
    if (!saved) {
      // Not recorded (the queue file refused the write, or the answer would move the state
      // backwards): keep polling at the usual pace; the next answer tries again.
      spdlog::warn("poll {} ({}): status not recorded: {}", id, poll.process_id, saved.error());
    } else if (*saved) {
      const LocalState state = to_local_state(view.status);
      if (state != record.state) {
        spdlog::info("process {} ({}): {} -> {}", id, poll.process_id, to_string(record.state),
                     to_string(state));
      }
      if (is_terminal(state)) {
        stop_polling(id);
        changed(id);
        return false;
      }
      changed(id);
    }
    warn_when_late(id, poll, record.process_type);
    return true;
  }

  // True when it warns now (once per process).
  bool warn_when_late(const std::string& id, Poll& poll, const std::string& process_type) {
    const Duration age = std::chrono::duration_cast<Duration>(now_utc() - poll.accepted_at);
    const Duration timeout = config.timeout_for(process_type);
    if (poll.timeout_warned || age < timeout) return false;
    poll.timeout_warned = true;
    spdlog::warn("process {} ({}): not finished after {}; still {}", id, poll.process_id,
                 format_duration(timeout),
                 feed == Feed::kSchedule
                     ? "polling every " + format_duration(config.polling.slow_interval)
                     : std::string("following it through the change feed (read once now)"));
    return true;
  }

  void schedule_next_poll(const std::string& id, Poll& poll) {
    const Duration age = std::chrono::duration_cast<Duration>(now_utc() - poll.accepted_at);
    const PollPhase phase = poll_phase(config.polling, age);
    if (phase != poll.phase) {
      spdlog::info("process {} ({}): polling interval {} -> {}", id, poll.process_id,
                   format_duration(config.polling.fast_interval),
                   format_duration(config.polling.slow_interval));
      poll.phase = phase;
    }
    schedule_poll(id, poll_interval(config.polling, age));
  }

  // --- the change feed ---

  bool feed_wanted() const {
    if (config.polling.mode == PollMode::kSchedule) return false;
    if (feed_missing_since &&
        std::chrono::steady_clock::now() - *feed_missing_since < kLookAgainAfter) {
      return false;
    }
    return config.polling.mode == PollMode::kFeed || gateway.offers_feed();
  }

  // On the schedule now, but the feed can be used (again).
  bool feed_may_start() const {
    return feed == Feed::kSchedule && !feed_in_flight && feed_wanted();
  }

  // Switches to the feed: with a cursor it goes on from there; without one it asks for one
  // and then reads every followed process once.
  void begin_feed() {
    if (feed_missing_since) feed_missing_since.reset();
    feed = cursor.empty() ? Feed::kStarting : Feed::kActive;
    for (auto& [id, poll] : polls)
      poll->timer.cancel();
    spdlog::info("following processes through the gateway's change feed{}",
                 cursor.empty() ? "" : " from the saved cursor");
    request_feed();
  }

  void to_schedule(const std::string& why) {
    if (feed == Feed::kSchedule) return;
    feed = Feed::kSchedule;
    spdlog::warn("{}; polling each process on the schedule", why);
    for (auto& [id, poll] : polls)
      schedule_poll(id, Duration::zero());
  }

  void feed_after(Duration delay) {
    feed_pausing = true;
    feed_timer.expires_after(delay);
    feed_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;
      self->feed_pausing = false;
      self->request_feed();
    });
  }

  // Sends the one feed request, unless one is out, the pause after the last one (or after a
  // failure) has not ended, or there is nothing to follow.
  void request_feed() {
    if (stopped || feed_in_flight || feed_pausing || feed == Feed::kDeciding) return;
    if (!feed_wanted()) {
      to_schedule("the gateway no longer offers the change feed");
      return;
    }
    if (feed != Feed::kStarting && polls.empty()) return;  // idle: asked again on the next 202
    feed_in_flight = true;
    const Duration wait = cursor.empty() ? Duration::zero() : config.polling.feed_wait;
    const auto sent = std::chrono::steady_clock::now();
    off_loop([this, from = cursor, wait] { return gateway.changes(from, wait); },
             [this, sent](GatewayReply reply) { on_feed(std::move(reply), sent); });
  }

  void on_feed(GatewayReply reply, std::chrono::steady_clock::time_point sent) {
    feed_in_flight = false;
    if (reply.outcome == Outcome::kNotFound) {
      ++counters.feed_failed;
      feed_missing_since = std::chrono::steady_clock::now();
      to_schedule("the gateway has no change feed (HTTP 404)");
      return;
    }
    if (reply.status == 410) {
      ++counters.feed_failed;
      spdlog::info(
          "change feed: the gateway no longer knows the cursor; reading every process "
          "once and starting again");
      forget_cursor();
      feed = feed == Feed::kSchedule ? Feed::kSchedule : Feed::kStarting;
      request_feed();
      return;
    }
    if (reply.outcome != Outcome::kOk) {
      feed_failed(reply.error, reply.retry_after);
      return;
    }
    auto page = parse_changes_answer(reply.body);
    if (!page) {
      feed_failed("unreadable change-feed answer: " + page.error(), std::nullopt);
      return;
    }
    ++counters.feed_ok;
    last_success = now_utc();
    if (feed_failures > 0) {
      if (feed_failures >= config.polling.alert_after) spdlog::info("change feed answers again");
      feed_failures = 0;
    }
    if (page->unreadable > 0) {
      spdlog::warn("change feed: {} unreadable entries skipped", page->unreadable);
    }
    for (const auto& view : page->changes) {
      const auto id = by_process.find(view.process_id);
      if (id == by_process.end()) {
        // Not followed here (another daemon's, or ended), or the request being sent,
        // whose 202 has not come yet.
        if (!in_flight.empty()) read_after_202 = true;
        continue;
      }
      ++counters.feed_changes;
      const std::string client_id = id->second;
      record_view(client_id, *polls.at(client_id), view);
    }
    const bool fresh = cursor.empty();
    cursor = page->cursor;
    if (feed == Feed::kSchedule) {
      // Back after failures; the cursor never stopped being valid, so nothing was missed.
      feed = Feed::kActive;
      for (auto& [id, poll] : polls) {
        if (!poll->resync) poll->timer.cancel();
      }
    }
    if (fresh || feed == Feed::kStarting) {
      feed = Feed::kActive;
      for (auto& [id, poll] : polls) {
        poll->resync = true;
        schedule_poll(id, Duration::zero());
      }
    }
    // A restart goes on from the saved cursor without reading any process, so it must not
    // be past a change this daemon has not recorded: none is saved while a process is still
    // to be read once.
    const bool unread =
        read_after_202 ||
        std::any_of(polls.begin(), polls.end(), [](const auto& p) { return p.second->resync; });
    if (!unread) {
      if (auto saved = queue.save_feed_cursor(config.gateway.url, cursor); !saved) {
        spdlog::warn("change feed: cursor not saved: {}", saved.error());
      }
    }
    Duration delay = Duration::zero();
    if (!page->more) {
      const auto took = std::chrono::steady_clock::now() - sent;
      if (took < config.polling.feed_interval) {
        delay = std::chrono::duration_cast<Duration>(config.polling.feed_interval - took);
      }
    }
    // The gateway could not hold the request (every place taken): ask less often.
    if (page->retry_after_seconds) {
      delay = std::max<Duration>(delay, std::chrono::seconds(*page->retry_after_seconds));
    }
    feed_after(delay);
  }

  void feed_failed(const std::string& error, std::optional<Duration> retry_after) {
    ++feed_failures;
    ++counters.feed_failed;
    last_error = error;
    Duration delay =
        backoff(config.polling.backoff_initial, config.polling.backoff_max, feed_failures);
    if (retry_after && *retry_after > delay) delay = *retry_after;
    if (feed_failures == config.polling.alert_after) {
      spdlog::critical("change feed: {} requests failed in a row, last: {}", feed_failures, error);
      to_schedule("the change feed keeps failing");
    } else {
      spdlog::warn("change feed: {}; retrying in {}", error, format_duration(delay));
    }
    feed_after(delay);
  }

  void forget_cursor() {
    cursor.clear();
    if (auto saved = queue.save_feed_cursor(config.gateway.url, ""); !saved) {
      spdlog::warn("change feed: cursor not forgotten: {}", saved.error());
    }
  }

  // While the feed reports changes no poll answer comes to warn of a late process: look
  // every fast_interval (in memory: with 100,000 processes followed, a read of the queue
  // file for each would be the daemon's main cost). A late process is also read once, in
  // case the feed missed its change (a server may die between recording a change and
  // announcing it).
  void watch() {
    if (stopped) return;
    if (feed != Feed::kSchedule) {
      for (auto& [id, poll] : polls) {
        if (poll->timeout_warned) continue;
        if (warn_when_late(id, *poll, poll->process_type) && !poll->resync) {
          poll->resync = true;
          schedule_poll(id, Duration::zero());
        }
      }
    }
    watch_timer.expires_after(config.polling.fast_interval);
    watch_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->watch();
    });
  }

  // At start: whether the feed is offered is in the token answer.
  void decide() {
    if (config.polling.mode == PollMode::kSchedule) return;
    feed = Feed::kDeciding;
    if (auto saved = queue.feed_cursor(config.gateway.url); saved) {
      cursor = *saved;
    } else {
      spdlog::warn("change feed: saved cursor unreadable: {}", saved.error());
    }
    off_loop([this] { return gateway.prepare(); },
             [this](GatewayReply reply) {
               if (feed != Feed::kDeciding) return;
               if (reply.outcome != Outcome::kOk) last_error = reply.error;
               feed = Feed::kSchedule;  // what begin_feed() starts from
               if (feed_wanted()) {
                 begin_feed();
               } else {
                 for (auto& [id, poll] : polls)
                   schedule_poll(id, Duration::zero());
               }
             });
  }

  // --- retry ---

  void retry(const std::string& id, RetryDone done) {
    auto record = queue.get(id);
    if (!record || !record->has_value()) {
      done(ApiError{ErrorCode::kNotFound, "No such process: " + id, std::nullopt});
      return;
    }
    if ((*record)->state != LocalState::kFailed || !(*record)->retryable) {
      done(ApiError{
          ErrorCode::kNotRetryable,
          "Process " + id + " is " + std::string(to_string((*record)->state)) +
              ((*record)->state == LocalState::kFailed ? " and not retryable" : ", not failed"),
          std::nullopt});
      return;
    }
    const std::string process_id = (*record)->process_id;
    const std::string process_type = (*record)->process_type;
    off_loop(
        [this, id, process_id] {
          LogScope on_this_thread(request_log_fields(id, process_id));
          return gateway.retry(process_id, id);
        },
        [this, id, process_id, process_type, done = std::move(done)](GatewayReply reply) {
          LogScope logging(request_log_fields(id, process_id));
          if (reply.outcome == Outcome::kPermanent) {
            done(ApiError{ErrorCode::kNotRetryable, "The gateway refused: " + reply.error,
                          std::nullopt});
            return;
          }
          if (reply.outcome != Outcome::kOk) {
            done(ApiError{ErrorCode::kServiceUnavailable,
                          "Cannot reach the gateway (" + reply.error + "); try again later",
                          std::nullopt});
            return;
          }
          if (auto saved = queue.mark_retried(id); !saved) {
            done(ApiError{ErrorCode::kInternalError, saved.error(), std::nullopt});
            return;
          }
          spdlog::info("process {} ({}): retried, a new attempt", id, process_id);
          start_polling(id, process_id, process_type, now_utc());
          if (listener) listener(id);
          done(std::nullopt);
        });
  }

  // --- pruning ---

  void prune() {
    if (stopped) return;
    if (auto pruned = queue.prune(now_utc() - config.queue.retention); !pruned) {
      spdlog::warn("prune: {}", pruned.error());
    } else if (*pruned > 0) {
      counters.pruned += *pruned;
      spdlog::info("pruned {} records that ended more than {} ago", *pruned,
                   format_duration(config.queue.retention));
    }
    prune_timer.expires_after(std::chrono::minutes(10));
    prune_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->prune();
    });
  }
};

Dispatcher::Dispatcher(asio::io_context& io, Queue& queue, Gateway& gateway, HookRunner& hooks,
                       const DaemonConfig& config)
    : impl_(std::make_shared<Impl>(io, queue, gateway, hooks, config)) {}

Dispatcher::~Dispatcher() {
  stop();
}

void Dispatcher::start() {
  impl_->started_at = now_utc();
  impl_->decide();
  auto active = impl_->queue.active();
  if (!active) {
    spdlog::error("queue: {}", active.error());
  } else {
    for (const auto& record : *active) {
      impl_->start_polling(record.client_process_id, record.process_id, record.process_type,
                           record.submitted_at.value_or(record.created_at));
    }
    if (!active->empty()) spdlog::info("resuming polling of {} processes", active->size());
  }
  impl_->hooks.resume();
  impl_->send_next();
  impl_->prune();
  impl_->watch();
}

void Dispatcher::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->send_timer.cancel();
  impl_->prune_timer.cancel();
  impl_->feed_timer.cancel();
  impl_->watch_timer.cancel();
  for (auto& [id, poll] : impl_->polls)
    poll->timer.cancel();
  // Calls already running finish (bounded by the gateway timeouts), but a held feed request
  // returns at once; queued ones are dropped.
  impl_->gateway.interrupt();
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

Status Dispatcher::cancel(const std::string& id) {
  if (impl_->in_flight == id) {
    return fail("it is being sent to the gateway right now; wait for the answer");
  }
  if (auto cancelled = impl_->queue.cancel(id); !cancelled) return cancelled;
  LogScope logging(request_log_fields(id));
  spdlog::info("cancelled {} before it was sent", id);
  impl_->changed(id);
  return {};
}

void Dispatcher::retry(const std::string& id, RetryDone done) {
  impl_->retry(id, std::move(done));
}

void Dispatcher::set_listener(std::function<void(const std::string&)> listener) {
  impl_->listener = std::move(listener);
}

DispatcherStats Dispatcher::stats() const {
  DispatcherStats stats = impl_->counters;
  stats.consecutive_failures = impl_->send_failures;
  stats.queue_error = impl_->queue_error;
  stats.degraded =
      impl_->send_failures >= impl_->config.polling.alert_after || !stats.queue_error.empty();
  stats.last_error = impl_->last_error;
  if (impl_->last_success != TimePoint{})
    stats.last_success = format_timestamp(impl_->last_success);
  stats.active_polls = impl_->polls.size();
  switch (impl_->feed) {
    case Impl::Feed::kActive:
      stats.polling = "feed";
      break;
    case Impl::Feed::kSchedule:
      stats.polling = "schedule";
      break;
    default:
      stats.polling = "starting";
      break;
  }
  stats.hooks_succeeded = impl_->hooks.succeeded();
  stats.hooks_failed = impl_->hooks.failed();
  return stats;
}

}  // namespace stargate::daemon
