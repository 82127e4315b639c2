// Tests of daemon/dispatcher.cpp: the real queue and event loop, with a scripted gateway
// standing in for the network so that every answer can be chosen.
#include "daemon/dispatcher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "tests/support/process.hpp"

namespace stargate::daemon {
namespace {

using namespace std::chrono_literals;

// Answers submits and status reads from scripts; once a script is used up it repeats its
// last answer.
class ScriptedGateway final : public Gateway {
 public:
  GatewayReply submit(const SubmitRequest& request) override {
    std::this_thread::sleep_for(submit_delay);
    std::lock_guard lock(mutex_);
    submitted.push_back(request);
    return next(submit_script);
  }
  Duration submit_delay = Duration::zero();
  std::optional<Duration> token_valid_for() const override { return std::nullopt; }
  std::vector<std::string> granted_types() const override { return {}; }
  GatewayReply retry(const std::string& process_id, const std::string&) override {
    std::lock_guard lock(mutex_);
    retried.push_back(process_id);
    return next(retry_script);
  }
  GatewayReply status(const std::string& process_id, const std::string&) override {
    std::lock_guard lock(mutex_);
    polled.push_back(process_id);
    polled_at.push_back(std::chrono::steady_clock::now());
    return next(status_script);
  }
  GatewayReply changes(const std::string& cursor, Duration wait) override {
    std::lock_guard lock(mutex_);
    feed_cursors.push_back(cursor);
    feed_waits.push_back(wait);
    return next(changes_script);
  }
  bool offers_feed() const override { return feed_offered; }
  GatewayReply prepare() override {
    GatewayReply reply;
    reply.outcome = Outcome::kOk;
    return reply;
  }
  std::deque<GatewayReply> submit_script, status_script, retry_script;
  // Without a feed by default: a gateway as seed 000 describes it.
  std::deque<GatewayReply> changes_script = {
      GatewayReply{Outcome::kNotFound, 404, {}, {}, "HTTP 404"}};
  std::atomic<bool> feed_offered{false};
  std::vector<std::string> feed_cursors;
  std::vector<Duration> feed_waits;
  std::vector<std::string> retried;
  std::vector<SubmitRequest> submitted;
  std::vector<std::string> polled;
  std::vector<std::chrono::steady_clock::time_point> polled_at;

 private:
  static GatewayReply next(std::deque<GatewayReply>& script) {
    GatewayReply reply = script.front();
    if (script.size() > 1) script.pop_front();
    return reply;
  }
  std::mutex mutex_;
};

GatewayReply answer(int status, nlohmann::json body = nullptr) {
  GatewayReply reply;
  reply.status = status;
  reply.outcome = classify(status, true);
  reply.body = std::move(body);
  reply.error = "HTTP " + std::to_string(status);
  return reply;
}

GatewayReply accepted(const std::string& id) {
  return answer(202, {{"processId", "PROC-20260114-00001"},
                      {"clientProcessId", id},
                      {"processType", "order"},
                      {"status", "accepted"},
                      {"createdAt", "2026-01-14T12:48:00Z"}});
}

GatewayReply status(const std::string& state, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json body = {{"processId", "PROC-20260114-00001"}, {"status", state}};
  body.update(extra);
  GatewayReply reply = answer(200, body);
  reply.outcome = Outcome::kOk;
  return reply;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = std::move(*Queue::open(dir_.file("queue.db"), clock_));
    config_.queue.retry_initial = 5ms;
    config_.queue.retry_max = 20ms;
    config_.polling.fast_interval = 5ms;
    config_.polling.slow_interval = 10ms;
    config_.polling.fast_phase = 50ms;
    config_.polling.backoff_initial = 5ms;
    config_.polling.backoff_max = 20ms;
  }

  // Runs the loop until `done` or a time limit.
  void run_until(const std::function<bool()>& done, Duration limit = 10s) {
    HookRunner hooks(io_, *queue_, config_);
    Dispatcher dispatcher(io_, *queue_, gateway_, hooks, config_);
    if (before_start_) before_start_(dispatcher);
    dispatcher.start();
    boost::asio::steady_timer check(io_);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::function<void()> tick = [&] {
      if (done() || std::chrono::steady_clock::now() > deadline) {
        dispatcher.stop();
        hooks.stop();
        io_.stop();
        return;
      }
      check.expires_after(2ms);
      check.async_wait([&](const boost::system::error_code&) { tick(); });
    };
    tick();
    io_.run();
    io_.restart();
  }

  LocalState state(const std::string& id) { return (**queue_->get(id)).state; }
  bool hook_done(const std::string& id) { return (**queue_->get(id)).hook_done; }
  std::function<void(Dispatcher&)> before_start_;

  test::TempDir dir_;
  SystemClock clock_;
  std::unique_ptr<Queue> queue_;
  DaemonConfig config_;
  ScriptedGateway gateway_;
  boost::asio::io_context io_;
};

TEST_F(DispatcherTest, SendsInOrderAndPollsToTheEnd) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  ASSERT_TRUE(queue_->enqueue({"b", "order", {}}));
  gateway_.submit_script = {accepted("x")};
  gateway_.status_script = {status("processing", {{"progress", 50}}), status("processing"),
                            status("completed", {{"result", {{"trackingNumber", "T"}}}})};
  run_until(
      [&] { return state("a") == LocalState::kCompleted && state("b") == LocalState::kCompleted; });
  ASSERT_EQ(gateway_.submitted.size(), 2u);
  EXPECT_EQ(gateway_.submitted[0].client_process_id, "a");
  EXPECT_EQ(gateway_.submitted[1].client_process_id, "b");
  EXPECT_EQ((**queue_->get("a")).result["trackingNumber"], "T");
}

TEST_F(DispatcherTest, TransientFailuresKeepTheRequestAndItsKey) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  gateway_.submit_script = {answer(503), answer(0), answer(429), accepted("a")};
  gateway_.status_script = {status("completed")};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  ASSERT_EQ(gateway_.submitted.size(), 4u);
  for (const auto& sent : gateway_.submitted) {
    EXPECT_EQ(sent.idempotency_key, gateway_.submitted[0].idempotency_key);
  }
  EXPECT_EQ((**queue_->get("a")).attempts, 4);
}

TEST_F(DispatcherTest, PermanentRefusalRejectsAndMovesOn) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  ASSERT_TRUE(queue_->enqueue({"b", "order", {}}));
  gateway_.submit_script = {
      answer(400, {{"error", "INVALID_REQUEST"}, {"message", "Missing required field: data"}}),
      accepted("b")};
  gateway_.status_script = {status("completed")};
  run_until([&] { return state("b") == LocalState::kCompleted; });
  const auto a = **queue_->get("a");
  EXPECT_EQ(a.state, LocalState::kRejected);
  EXPECT_EQ(a.error["code"], "INVALID_REQUEST");
  EXPECT_EQ(a.error["message"], "Missing required field: data");
}

TEST_F(DispatcherTest, PollFailuresBackOffAndRecover) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  gateway_.submit_script = {accepted("a")};
  gateway_.status_script = {
      answer(503), answer(503), answer(0),
      status("failed", {{"error", {{"code", "E"}, {"message", "m"}}}, {"retryable", true}})};
  run_until([&] { return state("a") == LocalState::kFailed; });
  const auto a = **queue_->get("a");
  EXPECT_EQ(a.error["code"], "E");
  EXPECT_TRUE(a.retryable);
  EXPECT_EQ(gateway_.polled.size(), 4u);
}

// A failed status read that says when to come back (Retry-After on a 429 or 503) is
// honoured: the next poll waits that long, though the backoff would ask sooner (5 ms here).
// On a 200 the schedule decides (RFC 9110 gives Retry-After no meaning there).
TEST_F(DispatcherTest, FailedPollsHonourRetryAfter) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  gateway_.submit_script = {accepted("a")};
  GatewayReply limited = answer(429);
  limited.retry_after = 300ms;
  GatewayReply running = status("processing");
  running.retry_after = 2s;
  gateway_.status_script = {limited, running, status("completed", {{"result", {{"ok", true}}}})};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  ASSERT_EQ(gateway_.polled_at.size(), 3u);
  EXPECT_GE(gateway_.polled_at[1] - gateway_.polled_at[0], 300ms);
  EXPECT_LT(gateway_.polled_at[2] - gateway_.polled_at[1], 2s);
}

TEST_F(DispatcherTest, ResumesPollingAfterARestart) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  ASSERT_TRUE(
      queue_->mark_accepted("a", {"PROC-20260114-00001", "a", "order", now_utc(), std::nullopt}));
  gateway_.status_script = {status("completed")};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  EXPECT_TRUE(gateway_.submitted.empty());
  EXPECT_EQ(gateway_.polled, std::vector<std::string>{"PROC-20260114-00001"});
}

TEST_F(DispatcherTest, HooksRunOnceWithTheRecord) {
  const auto out = dir_.file("delivered");
  config_.process_types["order"].on_complete =
      "cat > " + out +
      ".$STARGATE_CLIENT_PROCESS_ID; echo \"$STARGATE_STATE $STARGATE_PROCESS_ID\" >> " + out;
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  gateway_.submit_script = {accepted("a")};
  gateway_.status_script = {status("completed", {{"result", {{"trackingNumber", "T"}}}})};
  run_until([&] { return state("a") == LocalState::kCompleted && hook_done("a"); });
  EXPECT_EQ(test::read_file(out), "completed PROC-20260114-00001\n");
  const auto record = nlohmann::json::parse(test::read_file(out + ".a"));
  EXPECT_EQ(record["state"], "completed");
  EXPECT_EQ(record["result"]["trackingNumber"], "T");
  // A restart does not run it again.
  run_until([] { return false; }, 300ms);
  EXPECT_EQ(test::read_file(out), "completed PROC-20260114-00001\n");
}

TEST_F(DispatcherTest, AHookCutShortRunsAgainAtTheNextStart) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  ASSERT_TRUE(queue_->cancel("a"));  // terminal, hook not yet run
  const auto out = dir_.file("runs");
  config_.process_types["order"].on_complete = "echo run >> " + out + "; sleep 30";
  run_until([&] { return test::read_file(out) == "run\n"; });  // stopped while sleeping
  EXPECT_FALSE(hook_done("a"));
  config_.process_types["order"].on_complete = "echo run >> " + out;
  run_until([&] { return hook_done("a"); });
  EXPECT_EQ(test::read_file(out), "run\nrun\n");
}

TEST_F(DispatcherTest, TypesWithoutAHookAreMarkedDelivered) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  gateway_.submit_script = {answer(422, {{"error", "IDEMPOTENCY_KEY_REUSED"}, {"message", "m"}})};
  run_until([&] { return state("a") == LocalState::kRejected && hook_done("a"); });
}

TEST_F(DispatcherTest, RetryAsksTheGatewayAndPollsAgain) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  gateway_.submit_script = {accepted("a")};
  gateway_.status_script = {
      status("failed", {{"error", {{"code", "E"}, {"message", "m"}}}, {"retryable", true}})};
  run_until([&] { return state("a") == LocalState::kFailed; });
  gateway_.retry_script = {answer(202)};
  gateway_.status_script = {status("completed")};
  std::optional<std::optional<ApiError>> answer_seen;
  before_start_ = [&](Dispatcher& dispatcher) {
    dispatcher.retry("a", [&](std::optional<ApiError> error) { answer_seen = error; });
  };
  run_until([&] { return state("a") == LocalState::kCompleted; });
  ASSERT_TRUE(answer_seen.has_value());
  EXPECT_FALSE(answer_seen->has_value());
  EXPECT_EQ(gateway_.retried, std::vector<std::string>{"PROC-20260114-00001"});
}

TEST_F(DispatcherTest, RetryRefusesWhatIsNotARetryableFailure) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  std::optional<ApiError> refused;
  before_start_ = [&](Dispatcher& dispatcher) {
    dispatcher.retry("a", [&](std::optional<ApiError> error) { refused = error; });
    dispatcher.retry("missing", [&](std::optional<ApiError> error) {
      EXPECT_EQ(error->code, ErrorCode::kNotFound);
    });
  };
  gateway_.submit_script = {answer(503)};
  run_until([&] { return refused.has_value(); }, 2s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, ErrorCode::kNotRetryable);
  EXPECT_TRUE(gateway_.retried.empty());
}

TEST_F(DispatcherTest, CancelOnlyWhatIsStillQueued) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  ASSERT_TRUE(queue_->enqueue({"b", "order", {}}));
  gateway_.submit_script = {accepted("a")};
  gateway_.status_script = {status("processing")};
  Status cancelled_b = fail("not tried");
  before_start_ = [&](Dispatcher& dispatcher) { cancelled_b = dispatcher.cancel("b"); };
  run_until([&] { return state("a") == LocalState::kProcessing; });
  EXPECT_TRUE(cancelled_b);
  EXPECT_EQ(state("b"), LocalState::kCancelled);
  EXPECT_EQ(gateway_.submitted.size(), 1u);  // b was never sent
}

// --- the change feed ---

GatewayReply feed_page(const std::string& cursor, nlohmann::json changes = nlohmann::json::array(),
                       bool more = false) {
  GatewayReply reply = answer(200, {{"changes", changes}, {"cursor", cursor}, {"more", more}});
  reply.outcome = Outcome::kOk;
  return reply;
}

nlohmann::json change(const std::string& state, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json body = {{"processId", "PROC-20260114-00001"}, {"status", state}};
  body.update(extra);
  return body;
}

class FeedTest : public DispatcherTest {
 protected:
  void SetUp() override {
    DispatcherTest::SetUp();
    config_.gateway.url = "http://gateway.test";
    config_.polling.feed_interval = 5ms;
    config_.polling.feed_wait = 30s;
    gateway_.feed_offered = true;
  }
  void accept_a() {
    ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
    ASSERT_TRUE(
        queue_->mark_accepted("a", {"PROC-20260114-00001", "a", "order", now_utc(), std::nullopt}));
  }
};

TEST_F(FeedTest, FollowsProcessesThroughTheFeedWhenTheGatewayOffersIt) {
  ASSERT_TRUE(queue_->enqueue({"a", "order", {}}));
  gateway_.submit_script = {accepted("a")};
  gateway_.status_script = {status("accepted")};  // the one read after the first cursor
  gateway_.changes_script = {feed_page("c1"), feed_page("c2", {change("processing")}),
                             feed_page("c3", {change("processing", {{"progress", 50}})}),
                             feed_page("c4", {change("completed", {{"result", {{"ok", true}}}})})};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  EXPECT_EQ((**queue_->get("a")).result["ok"], true);
  // No poll of its own beyond reading it once: after the first cursor, and after its 202 as
  // the first request sent since the start (the two may fall together).
  EXPECT_LE(gateway_.polled.size(), 2u);
  ASSERT_GE(gateway_.feed_cursors.size(), 4u);
  EXPECT_EQ(gateway_.feed_cursors[0], "");
  EXPECT_EQ(gateway_.feed_waits[0], Duration::zero());  // a cursor is asked for at once
  EXPECT_EQ(gateway_.feed_cursors[1], "c1");
  EXPECT_EQ(gateway_.feed_waits[1], 30s);
  EXPECT_EQ(gateway_.feed_cursors[3], "c3");
  EXPECT_EQ(*queue_->feed_cursor("http://gateway.test"), "c4");
  EXPECT_EQ(*queue_->feed_cursor("http://another.test"), "");
}

// The feed can tell of a process before its 202 reaches the daemon: then the daemon reads
// the process once after the 202, and keeps no cursor past that change until it has.
TEST_F(FeedTest, ChangesThatComeBeforeTheirAcceptanceAreReadAfterIt) {
  accept_a();  // followed, so a long poll is out while b is sent
  ASSERT_TRUE(queue_->save_feed_cursor("http://gateway.test", "c0"));
  Dispatcher* dispatcher = nullptr;
  before_start_ = [&](Dispatcher& d) { dispatcher = &d; };
  gateway_.submit_delay = 300ms;  // the feed answers first
  GatewayReply b_accepted = accepted("b");
  b_accepted.body["processId"] = "PROC-20260114-00002";
  gateway_.submit_script = {b_accepted};
  nlohmann::json b_done = {{"processId", "PROC-20260114-00002"}, {"status", "completed"}};
  gateway_.changes_script = {feed_page("c0"), feed_page("c1", {b_done}), feed_page("c1")};
  GatewayReply read = answer(200, b_done);
  read.outcome = Outcome::kOk;
  gateway_.status_script = {read};
  bool queued = false;
  run_until([&] {
    if (!queued && !gateway_.feed_cursors.empty()) {  // after the start, a new request
      queued = true;
      EXPECT_TRUE(queue_->enqueue({"b", "order", {}}));
      dispatcher->kick();
    }
    return queued && state("b") == LocalState::kCompleted &&
           *queue_->feed_cursor("http://gateway.test") == "c1";
  });
  EXPECT_EQ(state("b"), LocalState::kCompleted);
  EXPECT_EQ(gateway_.polled, std::vector<std::string>{"PROC-20260114-00002"});
  EXPECT_EQ(*queue_->feed_cursor("http://gateway.test"), "c1");
}

TEST_F(FeedTest, ResumesFromTheSavedCursorWithoutReadingEachProcess) {
  accept_a();
  ASSERT_TRUE(queue_->save_feed_cursor("http://gateway.test", "c7"));
  gateway_.changes_script = {feed_page("c8", {change("completed")})};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  EXPECT_TRUE(gateway_.polled.empty());
  ASSERT_FALSE(gateway_.feed_cursors.empty());
  EXPECT_EQ(gateway_.feed_cursors[0], "c7");
}

TEST_F(FeedTest, AnUnknownCursorReadsEachProcessOnceAndStartsAgain) {
  accept_a();
  ASSERT_TRUE(queue_->save_feed_cursor("http://gateway.test", "pruned"));
  gateway_.changes_script = {answer(410, {{"error", "CURSOR_EXPIRED"}}), feed_page("c1"),
                             feed_page("c1")};
  // It completed while the cursor was lost: only the read after the new cursor can tell.
  gateway_.status_script = {status("completed")};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  ASSERT_GE(gateway_.feed_cursors.size(), 2u);
  EXPECT_EQ(gateway_.feed_cursors[0], "pruned");
  EXPECT_EQ(gateway_.feed_cursors[1], "");
  EXPECT_EQ(gateway_.polled.size(), 1u);
}

TEST_F(FeedTest, AGatewayWithoutTheFeedIsPolledOnTheSchedule) {
  config_.polling.mode = PollMode::kFeed;  // asked for, but the gateway answers 404
  gateway_.feed_offered = false;
  accept_a();
  gateway_.status_script = {status("processing"), status("completed")};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  EXPECT_EQ(gateway_.feed_cursors.size(), 1u);  // tried once, then not for a while
  EXPECT_EQ(gateway_.polled.size(), 2u);
}

TEST_F(FeedTest, ScheduleModeNeverAsksForTheFeed) {
  config_.polling.mode = PollMode::kSchedule;
  accept_a();
  gateway_.status_script = {status("completed")};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  EXPECT_TRUE(gateway_.feed_cursors.empty());
}

TEST_F(FeedTest, AFeedThatKeepsFailingFallsBackToTheScheduleAndComesBack) {
  config_.polling.alert_after = 3;
  accept_a();
  ASSERT_TRUE(queue_->save_feed_cursor("http://gateway.test", "c1"));
  gateway_.changes_script = {answer(503), answer(503), answer(0), answer(503),
                             feed_page("c2", {change("completed")})};
  gateway_.status_script = {status("processing")};  // polled on the schedule meanwhile
  run_until([&] { return state("a") == LocalState::kCompleted; });
  EXPECT_GE(gateway_.polled.size(), 1u);
  EXPECT_EQ(gateway_.feed_cursors.back(), "c1");  // the cursor stayed valid throughout
  EXPECT_EQ(*queue_->feed_cursor("http://gateway.test"), "c2");
}

TEST_F(FeedTest, UnreadableFeedAnswersAreFailuresNotChanges) {
  accept_a();
  ASSERT_TRUE(queue_->save_feed_cursor("http://gateway.test", "c1"));
  GatewayReply no_cursor = feed_page("x");
  no_cursor.body.erase("cursor");
  GatewayReply not_a_list = feed_page("x");
  not_a_list.body["changes"] = "all of them";
  GatewayReply huge_cursor = feed_page(std::string(500, 'c'));
  gateway_.changes_script = {no_cursor, not_a_list, huge_cursor,
                             feed_page("c2", {change("completed"), {{"nonsense", 1}}})};
  run_until([&] { return state("a") == LocalState::kCompleted; });
  for (std::size_t i = 0; i + 1 < gateway_.feed_cursors.size(); ++i)
    EXPECT_EQ(gateway_.feed_cursors[i], "c1") << i;  // never moved by a bad answer
}

}  // namespace
}  // namespace stargate::daemon
