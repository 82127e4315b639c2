// stargated as a black box, against the real stargate-server on loopback: offline queueing,
// kill -9, token renewal, rate limits, 503 bursts, permanent refusals, polling phases, hooks,
// stale sockets, durable concurrent submissions and a full disk (how operators drive it:
// daemon_operations_test.cpp).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "shared/sqlite.hpp"
#include "tests/e2e/daemon_helpers.hpp"
#include "tests/support/fault_proxy.hpp"
#include "tests/support/socket_client.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

bool all_in_state(httplib::Client& client, const std::vector<std::string>& ids,
                  const std::string& state) {
  for (const auto& id : ids) {
    const auto r = record(client, id);
    if (!r.is_object() || r.value("state", "") != state) return false;
  }
  return true;
}

// The server's view: every process the tenant has, by clientProcessId.
std::multiset<std::string> server_processes(Stack& stack) {
  auto exported = run({binary("stargate-server"), "audit", "export", "--since", "1h", "--config",
                       stack.dir().file("server.toml")});
  std::multiset<std::string> created;
  std::istringstream lines(exported.out);
  for (std::string line; std::getline(lines, line);) {
    const auto entry = json::parse(line);
    if (entry["kind"] == "state" && entry["from"].is_null()) created.insert(entry["processId"]);
  }
  return created;
}

TEST(Daemon, QueuesOfflineThenSendsEverythingInOrderExactlyOnce) {
  Stack stack(fast_stack());
  stack.stop_server();
  auto client = socket_client(stack.socket());
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back("offline-" + std::to_string(i));
    auto res = submit(*client, ids.back());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
  }
  EXPECT_TRUE(all_in_state(*client, {ids.front(), ids.back()}, "queued"));
  stack.start_server();
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, ids, "completed"); }, 120s))
      << stack.daemon_log();
  // In order: the gateway numbered them as they came.
  std::string previous;
  for (const auto& id : ids) {
    const std::string process = record(*client, id)["processId"];
    EXPECT_LT(previous, process) << id;
    previous = process;
  }
  const auto created = server_processes(stack);
  EXPECT_EQ(created.size(), ids.size());
  EXPECT_EQ(std::set<std::string>(created.begin(), created.end()).size(), ids.size());
}

TEST(Daemon, KillNineDuringAFlushLosesAndDuplicatesNothing) {
  Stack stack(fast_stack());
  stack.stop_server();
  auto client = socket_client(stack.socket());
  std::vector<std::string> ids;
  for (int i = 0; i < 500; ++i) {
    ids.push_back("flush-" + std::to_string(i));
    ASSERT_EQ(submit(*client, ids.back())->status, 202);
  }
  stack.start_server();
  std::mt19937 random(42);
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  int kills = 0;
  while (kills < 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + random() % 400));
    stack.stop_daemon(SIGKILL);
    ++kills;
    stack.start_daemon();
    client = socket_client(stack.socket());
  }
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, ids, "completed"); }, 120s))
      << stack.daemon_log();
  const auto created = server_processes(stack);
  EXPECT_EQ(created.size(), ids.size()) << "after " << kills << " kills";
  std::set<std::string> local;
  for (const auto& id : ids)
    local.insert(record(*client, id)["processId"]);
  EXPECT_EQ(local.size(), ids.size());
}

TEST(Daemon, RenewsItsTokenWhenItExpiresAndAfterA401) {
  auto options = fast_stack();
  options.server_settings = "";
  options.server_extra += "[auth]\ntoken_lifetime = \"2s\"\n";
  Stack stack(options);
  auto client = socket_client(stack.socket());
  ASSERT_EQ(submit(*client, "t1")->status, 202);
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, {"t1"}, "completed"); }, 30s));
  std::this_thread::sleep_for(2500ms);  // the first token has expired
  ASSERT_EQ(submit(*client, "t2")->status, 202);
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, {"t2"}, "completed"); }, 30s));
  // A new signing key makes every token the daemon holds invalid: a 401, one renewal.
  stack.stop_server();
  ::unlink(stack.dir().file("server/jwt.key").c_str());
  stack.start_server();
  ASSERT_EQ(submit(*client, "t3")->status, 202);
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, {"t3"}, "completed"); }, 30s))
      << stack.daemon_log();
  EXPECT_GE(count(stack.daemon_log(), "new access token"), 3u);
}

TEST(Daemon, RespectsRetryAfterOnA429) {
  auto options = fast_stack();
  options.server_extra = "[rate_limit]\nper_minute = 60\nburst = 3\n";
  options.daemon_extra = "mode = \"schedule\"\n";
  Stack stack(options);
  auto client = socket_client(stack.socket());
  // Someone else of the tenant empties its bucket first: the daemon's pacing has not seen
  // an answer yet and cannot know, so it is refused, and waits as it is told.
  httplib::Client gateway("127.0.0.1", stack.port());
  auto granted =
      gateway.Post("/oauth/token", httplib::Params{{"grant_type", "client_credentials"},
                                                   {"client_id", stack.client_id()},
                                                   {"client_secret", stack.client_secret()}});
  ASSERT_EQ(granted->status, 200);
  const std::string token = json::parse(granted->body)["access_token"];
  for (int i = 0; i < 5; ++i)
    gateway.Get("/api/stargate/processes", {{"Authorization", "Bearer " + token}});
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back("limited-" + std::to_string(i));
    ASSERT_EQ(submit(*client, ids.back())->status, 202);
  }
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, ids, "completed"); }, 60s))
      << stack.daemon_log();
  const auto log = stack.daemon_log();
  EXPECT_NE(log.find("RATE_LIMIT_EXCEEDED"), std::string::npos);
  // Honouring Retry-After (1 s here) keeps the refusals few: no hammering.
  EXPECT_LT(count(stack.server_log(), "rate limit: tenant acme refused"), 40u);
}

TEST(Daemon, BacksOffThroughABurstOf503s) {
  auto options = fast_stack();
  options.start_daemon = false;
  Stack stack(options);
  std::atomic<int> refused{0};
  FaultProxy proxy(
      stack.port(),
      [&](const std::string& method, const std::string& path) -> std::optional<FaultProxy::Fault> {
        if (method == "POST" && path == "/api/stargate/processes" && refused < 4) {
          ++refused;
          return FaultProxy::Fault{503, "", 0, ""};
        }
        return std::nullopt;
      });
  stack.start_daemon(proxy.port());
  auto client = socket_client(stack.socket());
  ASSERT_EQ(submit(*client, "burst")->status, 202);
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, {"burst"}, "completed"); }, 30s))
      << stack.daemon_log();
  EXPECT_EQ(record(*client, "burst")["attempts"], 5);  // four 503s, then the 202
  std::vector<std::chrono::steady_clock::time_point> posts;
  for (const auto& seen : proxy.seen()) {
    if (seen.method == "POST" && seen.path == "/api/stargate/processes") posts.push_back(seen.at);
  }
  ASSERT_EQ(posts.size(), 5u);
  // Backoff from 100 ms doubling (±20% jitter), capped at 500 ms: the gaps grow.
  const auto gap = [&](int i) { return posts[i + 1] - posts[i]; };
  EXPECT_GE(gap(0), 70ms);
  EXPECT_GE(gap(2), 300ms);
  EXPECT_GT(gap(2), gap(0));
}

// Something in the gateway's place answers with far more than any real answer (64 MiB): the
// daemon reads no more than its limit, counts it as a transient failure, and carries on
// once real answers come back.
TEST(Daemon, AnOversizedAnswerIsCutOffAndRetried) {
  auto options = fast_stack();
  options.start_daemon = false;
  options.daemon_extra = "backoff_initial = \"100ms\"\n";  // of polling
  Stack stack(options);
  std::atomic<int> oversized{0};
  FaultProxy proxy(
      stack.port(),
      [&](const std::string& method, const std::string& path) -> std::optional<FaultProxy::Fault> {
        if (method == "GET" && path.rfind("/api/stargate/processes/", 0) == 0 && oversized < 2) {
          ++oversized;
          return FaultProxy::Fault{200, "", 64 << 20, ""};
        }
        return std::nullopt;
      });
  stack.start_daemon(proxy.port());
  auto client = socket_client(stack.socket());
  ASSERT_EQ(submit(*client, "big")->status, 202);
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, {"big"}, "completed"); }, 30s))
      << stack.daemon_log();
  EXPECT_EQ(oversized, 2);
  EXPECT_NE(stack.daemon_log().find("the answer was larger than 8388608 bytes"), std::string::npos)
      << stack.daemon_log();
}

TEST(Daemon, APermanentRefusalBecomesRejected) {
  auto options = fast_stack();
  options.server_extra += "[process_types.order]\n";  // the server no longer serves shipping
  Stack stack(options);
  auto client = socket_client(stack.socket());
  ASSERT_EQ(submit(*client, "ship-1", "shipping")->status, 202);
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, {"ship-1"}, "rejected"); }, 30s));
  const auto rejected = record(*client, "ship-1");
  EXPECT_EQ(rejected["error"]["code"], "INVALID_REQUEST");
  EXPECT_EQ(rejected["error"]["message"], "Unknown processType: shipping");
  EXPECT_EQ(rejected["attempts"], 1);
}

TEST(Daemon, PollsFastThenSlowAndWarnsOnceOnTimeout) {
  auto options = fast_stack();
  options.step_duration = "400ms";
  options.daemon_extra =
      "mode = \"schedule\"\nfast_phase = \"300ms\"\nslow_interval = \"200ms\"\n"
      "[process_types.order]\ntimeout = \"500ms\"\n";
  Stack stack(options);
  auto client = socket_client(stack.socket());
  ASSERT_EQ(submit(*client, "slow-1")->status, 202);
  ASSERT_TRUE(wait_until([&] { return all_in_state(*client, {"slow-1"}, "completed"); }, 30s));
  const auto log = stack.daemon_log();
  EXPECT_EQ(count(log, "polling interval 100ms -> 200ms"), 1u) << log;
  EXPECT_EQ(count(log, "not finished after 500ms"), 1u) << log;
}

TEST(Daemon, DeliversResultsOnceAndAgainAfterAKillDuringTheHook) {
  TempDir out;
  auto options = fast_stack();
  options.daemon_extra = "[process_types.order]\non_complete = \"echo $STARGATE_STATE >> " +
                         out.file("runs") + "; sleep 3\"\non_complete_timeout = \"10s\"\n";
  Stack stack(options);
  auto client = socket_client(stack.socket());
  ASSERT_EQ(submit(*client, "hooked")->status, 202);
  ASSERT_TRUE(wait_until([&] { return read_file(out.file("runs")) == "completed\n"; }, 30s));
  stack.stop_daemon(SIGKILL);  // mid-hook: it must run again
  stack.start_daemon();
  ASSERT_TRUE(
      wait_until([&] { return read_file(out.file("runs")) == "completed\ncompleted\n"; }, 30s));
  ASSERT_TRUE(wait_until(
      [&] { return stack.daemon_log().find("hook hooked: delivered") != std::string::npos; }, 30s));
  stack.stop_daemon(SIGTERM);
  stack.start_daemon();  // delivered and recorded: not again
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(read_file(out.file("runs")), "completed\ncompleted\n");
}

TEST(Daemon, ReplacesAStaleSocketButNotALiveOne) {
  Stack stack(fast_stack());
  // A second daemon on the same socket is refused.
  auto second = run({binary("stargated"), "--config", stack.dir().file("stargated.toml")});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("already listening"), std::string::npos) << second.err;
  // kill -9 leaves the socket file behind; the next start replaces it.
  stack.stop_daemon(SIGKILL);
  struct stat st {};
  ASSERT_EQ(::stat(stack.socket().c_str(), &st), 0);
  stack.start_daemon();
  EXPECT_NE(stack.daemon_log().find("removed stale"), std::string::npos);
  auto client = socket_client(stack.socket());
  EXPECT_EQ(submit(*client, "after-stale")->status, 202);
}

TEST(Daemon, AThousandConcurrentSubmissionsAreAllOnDisk) {
  Stack stack(fast_stack());
  stack.stop_server();  // nothing leaves the queue: what is on disk is what was acknowledged
  std::mutex mutex;
  std::vector<std::string> acknowledged;
  std::vector<std::thread> threads;
  for (int t = 0; t < 50; ++t) {
    threads.emplace_back([&, t] {
      auto client = socket_client(stack.socket());
      for (int i = 0; i < 20; ++i) {
        const std::string id = "c-" + std::to_string(t) + "-" + std::to_string(i);
        auto res = submit(*client, id);
        if (res && res->status == 202) {
          std::lock_guard lock(mutex);
          acknowledged.push_back(id);
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(acknowledged.size(), 1000u);
  stack.stop_daemon(SIGKILL);
  db::Database queue(stack.dir().file("daemon/queue.db"));
  std::set<std::string> on_disk;
  auto rows = queue.prepare("SELECT client_process_id FROM requests");
  while (rows.step())
    on_disk.insert(rows.text(0));
  for (const auto& id : acknowledged)
    EXPECT_EQ(on_disk.count(id), 1u) << id;
  EXPECT_NE(stack.daemon_log().find("socket uid="), std::string::npos);  // peers are logged
}

TEST(Daemon, ReportsDegradedAfterRepeatedFailuresAndRecovers) {
  Stack stack(fast_stack());
  stack.stop_server();
  auto client = socket_client(stack.socket());
  ASSERT_EQ(submit(*client, "waiting")->status, 202);
  auto health = [&] { return json::parse(client->Get("/v1/health")->body); };
  ASSERT_TRUE(wait_until([&] { return health()["status"] == "degraded"; }, 30s));
  EXPECT_GE(health()["gateway"]["consecutiveFailures"].get<int>(), 5);
  EXPECT_TRUE(health()["gateway"]["lastError"].is_string());
  EXPECT_EQ(count(stack.daemon_log(), "critical"), 1u);  // one alert, not one per failure
  stack.start_server();
  ASSERT_TRUE(wait_until([&] { return health()["status"] == "ok"; }, 30s));
  EXPECT_NE(stack.daemon_log().find("gateway reachable again"), std::string::npos);
}

// The queue's disk fills up after a request was queued: the gateway accepts it, but the
// daemon cannot record that. It must not send it again at once, over and over (the
// gateway would see a flood); it reports itself degraded, waits, and once there is room
// again records the answer (the resend is an idempotent replay) and follows the process.
TEST(Daemon, AFullDiskDelaysRecordingWithoutFloodingTheGateway) {
  TempDir disk;
  // A small file system of our own, seen by this test and the programs it starts only.
  if (::unshare(CLONE_NEWNS) != 0 ||
      ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("tmpfs", disk.path().c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "needs a private mount namespace (root): " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{disk.path()};
  StackOptions options = fast_stack();
  options.start_daemon = false;
  Stack stack(options);
  ASSERT_EQ(::symlink(disk.path().c_str(), stack.dir().file("daemon").c_str()), 0);
  stack.start_daemon();
  stack.stop_server();
  ASSERT_EQ(stack.cli({"submit", "order", "--data", kOrder, "--id", "full-1"}).exit_code, 0);

  // A reader holding a snapshot keeps SQLite from reusing the start of its log, so the next
  // write must grow the file; then the disk is filled to the last byte.
  db::Database reader(disk.path() + "/queue.db", 5000, db::Database::Mode::kReadOnly);
  reader.exec("BEGIN");
  reader.exec("SELECT count(*) FROM requests");
  const std::string filler = disk.path() + "/filler";
  {
    const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    const std::string block(64 * 1024, 'x');
    std::size_t size = block.size();
    while (size > 0) {
      if (::write(fd, block.data(), size) < 0) size /= 2;  // ENOSPC: finish with smaller writes
    }
    ::close(fd);
  }

  stack.start_server();
  ASSERT_TRUE(wait_until(
      [&] { return stack.daemon_log().find("cannot be recorded") != std::string::npos; }, 30s))
      << stack.daemon_log();
  auto health = stack.cli({"--json", "health"});
  EXPECT_EQ(health.exit_code, 1);
  const auto report = json::parse(health.out);
  EXPECT_EQ(report["status"], "degraded");
  EXPECT_EQ(report["queue"]["writable"], false);
  EXPECT_NE(report["queue"]["lastError"].get<std::string>().find("full"), std::string::npos)
      << report.dump();
  // Backing off (100 ms doubling to 500 ms here): a handful of sends in two seconds, not the
  // hundreds an immediate resend makes.
  std::this_thread::sleep_for(2s);
  EXPECT_LT(count(stack.server_log(), "POST /api/stargate/processes 202"), 15u);

  ::unlink(filler.c_str());
  reader.exec("COMMIT");
  auto wait = stack.cli({"--json", "wait", "full-1", "--timeout", "60s"});
  ASSERT_EQ(wait.exit_code, 0) << wait.err << stack.daemon_log();
  EXPECT_EQ(json::parse(wait.out)["state"], "completed");
  EXPECT_EQ(server_processes(stack).size(), 1u);  // every resend was a replay
  auto healthy = stack.cli({"--json", "health"});
  EXPECT_EQ(healthy.exit_code, 0) << healthy.out;
  EXPECT_EQ(json::parse(healthy.out)["queue"]["writable"], true);
}

}  // namespace
}  // namespace stargate::test
