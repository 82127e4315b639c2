// The scale-out mode end to end: real redis-server, a real MongoDB-compatible server
// (FerretDB, or the mongod of STARGATE_TEST_MONGODB_URI), two `stargate-server gateway`
// and two `stargate-server worker` processes, the unchanged daemon and CLI.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "server/store/mongo/mongo_client.hpp"
#include "tests/support/socket_client.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Two units of SKU-001.
constexpr const char* kTwoUnits = R"({"orderId":"ORD-1","items":[{"sku":"SKU-001","quantity":2}]})";

std::string token(Stack& stack, int port) {
  httplib::Client http("127.0.0.1", port);
  auto res = http.Post("/oauth/token",
                       "grant_type=client_credentials&client_id=" + stack.client_id() +
                           "&client_secret=" + stack.client_secret(),
                       "application/x-www-form-urlencoded");
  if (!res || res->status != 200) return "";
  return json::parse(res->body)["access_token"];
}

httplib::Result submit(int port, const std::string& bearer, const std::string& key,
                       const std::string& data = kTwoUnits) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(20, 0);
  httplib::Headers headers = {{"Authorization", "Bearer " + bearer}};
  if (!key.empty()) headers.emplace("Idempotency-Key", key);
  return http.Post(
      "/api/stargate/processes", headers,
      R"({"clientProcessId":"c-)" + key + R"(","processType":"order","data":)" + data + "}",
      "application/json");
}

json status(int port, const std::string& bearer, const std::string& id) {
  httplib::Client http("127.0.0.1", port);
  auto res = http.Get("/api/stargate/processes/" + id, {{"Authorization", "Bearer " + bearer}});
  if (!res || res->status != 200) return json::object();
  return json::parse(res->body);
}

bool completed(int port, const std::string& bearer, const std::string& id) {
  return status(port, bearer, id).value("status", "") == "completed";
}

// The demo's order, through the daemon and one gateway, run by one of two workers. The
// daemon follows it through the change feed: the worker's changes reach it through Redis
// (the schedule would not look again for 30 s).
TEST(ScaleOut, TheDaemonsOrderRunsOnAWorkerBehindEitherGateway) {
  StackOptions options;
  options.scale_out = true;
  options.fast_interval = "30s";
  Stack stack(options);
  ASSERT_TRUE(wait_until(
      [&] {
        return stack.cli({"health"}).out.find("through the gateway's change feed") !=
               std::string::npos;
      },
      10s))
      << stack.daemon_log();
  const auto started = std::chrono::steady_clock::now();
  auto submitted = stack.cli({"--json", "submit", "order", "--data", kTwoUnits, "--wait"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err << submitted.out << stack.server_log();
  const auto answer = json::parse(submitted.out);
  EXPECT_EQ(answer.value("state", ""), "completed") << submitted.out;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 25s) << stack.daemon_log();
  const std::string id = answer["processId"];
  int ran = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    if (stack.worker_log(i).find("process " + id + ": completed") != std::string::npos) ++ran;
  }
  EXPECT_EQ(ran, 1) << stack.worker_log(0) << "\n----\n" << stack.worker_log(1);
  // The other gateway answers for it too.
  const auto bearer = token(stack, stack.gateway_port(1));
  EXPECT_TRUE(completed(stack.gateway_port(1), bearer, id));
  auto stock = stack.admin({"stock", "--json"});
  ASSERT_EQ(stock.exit_code, 0) << stock.err;
  EXPECT_NE(stock.out.find("SKU-001"), std::string::npos) << stock.out;
  // Every key the programs made in Redis begins with their [redis] prefix.
  auto keys = run({"/usr/bin/redis-cli", "-p", std::to_string(stack.redis().port()), "--scan"});
  ASSERT_EQ(keys.exit_code, 0) << keys.err;
  EXPECT_NE(keys.out.find(std::string(kRedisPrefix) + ":queue\n"), std::string::npos) << keys.out;
  std::istringstream lines(keys.out);
  for (std::string key; std::getline(lines, key);)
    EXPECT_EQ(key.rfind(std::string(kRedisPrefix) + ":", 0), 0u) << key;
}

// A change in MongoDB that never reached the feed (its writer died before telling Redis):
// here a completion written into MongoDB by the test, with no worker running. The daemon
// follows the process through the feed, which says nothing; it reads the process once when
// it warns that the process is late, and so sees it completed. Then, with a feed request
// held for the other process, the daemon stops without waiting for the hold to end.
TEST(ScaleOut, AChangeTheFeedMissedIsReadWhenTheProcessIsLate) {
  StackOptions options;
  options.scale_out = true;
  options.workers = 0;
  options.fast_interval = "1s";  // how often the daemon looks for late processes
  options.daemon_extra = "timeout = \"3s\"\n";
  Stack stack(options);
  auto client = socket_client(stack.socket());
  const auto polling = [&] {
    auto res = client->Get("/v1/health");
    return res && res->status == 200 ? json::parse(res->body)["gateway"].value("polling", "")
                                     : std::string();
  };
  const auto record = [&](const std::string& name) {
    auto res = client->Get("/v1/processes/" + name);
    return res && res->status == 200 ? json::parse(res->body) : json::object();
  };
  const auto send = [&](const std::string& name) {
    auto sent = client->Post(
        "/v1/processes",
        json{{"processType", "order"}, {"clientProcessId", name}, {"data", json::parse(kTwoUnits)}}
            .dump(),
        "application/json");
    return sent && sent->status == 202;
  };
  const auto status_reads = [&] {
    httplib::Client http("127.0.0.1", stack.port());
    auto page = http.Get("/metrics");
    const std::string route = R"(route="/api/stargate/processes/:id")";
    return page && page->body.find(route) != std::string::npos;
  };
  ASSERT_TRUE(wait_until([&] { return polling() == "feed"; }, 10s)) << stack.daemon_log();
  // The first request after a start is read once after its 202 anyway (it may have reached
  // the gateway before a crash): let that happen to another process first.
  ASSERT_TRUE(send("first-1"));
  ASSERT_TRUE(wait_until(status_reads, 20s)) << stack.daemon_log();
  ASSERT_TRUE(send("missed-1"));
  ASSERT_TRUE(wait_until([&] { return record("missed-1").value("state", "") == "accepted"; }, 20s))
      << stack.daemon_log();
  const std::string id = record("missed-1").value("processId", "");
  ASSERT_FALSE(id.empty()) << record("missed-1").dump();

  auto mongo = server::mongo::Client::open(stack.mongo().uri());
  ASSERT_TRUE(mongo) << mongo.error();
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto written = (*mongo)->write(
      "update", "processes",
      {{"updates", json::array({{{"q", {{"_id", id}}},
                                 {"u",
                                  {{"$set",
                                    {{"status", "completed"},
                                     {"progress", 100},
                                     {"result", R"({"note":"written by the test"})"},
                                     {"updatedAt", now},
                                     {"finishedAt", now}}}}}}})}});
  ASSERT_TRUE(written) << written.error();
  ASSERT_TRUE(wait_until([&] { return record("missed-1").value("state", "") == "completed"; }, 30s))
      << stack.daemon_log();
  EXPECT_NE(stack.daemon_log().find("missed-1 (" + id +
                                    "): not finished after 3s; still following it through the "
                                    "change feed (read once now)"),
            std::string::npos)
      << stack.daemon_log();
  EXPECT_EQ(polling(), "feed");

  // first-1 is still open, so a feed request is held: stopping does not wait for it.
  ASSERT_TRUE(wait_until(
      [&] {
        httplib::Client http("127.0.0.1", stack.port());
        auto page = http.Get("/metrics");
        return page && page->body.find("\nstargate_feed_parked 1\n") != std::string::npos;
      },
      20s));
  const auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(stack.stop_daemon(SIGTERM), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 15s);  // the hold lasts 30 s
}

// One key sent 32 times at once, half to each gateway: one process, 31 replays.
TEST(ScaleOut, OneKeyThroughTwoGatewaysMakesOneProcess) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  Stack stack(options);
  const std::string bearer = token(stack, stack.port());
  ASSERT_FALSE(bearer.empty());
  std::mutex mutex;
  std::set<std::string> ids;
  std::atomic<int> accepted{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&, i] {
      auto res = submit(stack.gateway_port(static_cast<std::size_t>(i % 2)), bearer, "same-key");
      if (!res || res->status != 202) {
        ++other;
        return;
      }
      ++accepted;
      std::lock_guard lock(mutex);
      ids.insert(json::parse(res->body)["processId"].get<std::string>());
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(other, 0);
  EXPECT_EQ(accepted, 32);
  EXPECT_EQ(ids.size(), 1u);
  const std::string log = stack.server_log() + read_file(stack.dir().file("gateway1.log"));
  EXPECT_EQ(count(log, ": accepted order for tenant acme"), 1u) << log;
}

// One tenant's limit holds across both gateways: burst 5, 30 a minute; of 40 requests in
// a few seconds through both, at most the burst plus what refilled meanwhile pass.
TEST(ScaleOut, OneTenantsRateLimitHoldsAcrossGateways) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  options.workers = 1;
  options.server_extra = "[rate_limit]\nper_minute = 30\nburst = 5\n";
  Stack stack(options);
  const std::string bearer = token(stack, stack.port());
  ASSERT_FALSE(bearer.empty());
  const auto start = std::chrono::steady_clock::now();
  int accepted = 0, limited = 0;
  for (int i = 0; i < 40; ++i) {
    auto res = submit(stack.gateway_port(static_cast<std::size_t>(i % 2)), bearer,
                      "rl-" + std::to_string(i));
    ASSERT_TRUE(res);
    if (res->status == 202) ++accepted;
    if (res->status == 429) {
      ++limited;
      EXPECT_TRUE(res->has_header("Retry-After"));
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(accepted, 5 + static_cast<int>(seconds * 30 / 60) + 1) << seconds << " s";
  EXPECT_GE(limited, 40 - 5 - static_cast<int>(seconds * 30 / 60) - 1);
}

// kill -9 of the worker running an order: the other worker takes it over once the lease
// ends and finishes it; the stock is reserved once.
TEST(ScaleOut, AKilledWorkersProcessIsFinishedByTheOtherOnce) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  options.step_duration = "1s";
  options.lease = "3s";
  Stack stack(options);
  const std::string bearer = token(stack, stack.port());
  auto res = submit(stack.port(), bearer, "kill-me",
                    R"({"orderId":"ORD-K","items":[{"sku":"SKU-K","quantity":7}]})");
  ASSERT_TRUE(res && res->status == 202);
  const std::string id = json::parse(res->body)["processId"];
  std::size_t runner = 2;
  ASSERT_TRUE(wait_until(
      [&] {
        for (std::size_t i = 0; i < 2; ++i) {
          if (stack.worker_log(i).find("process " + id + ": order started") != std::string::npos) {
            runner = i;
          }
        }
        return runner < 2;
      },
      std::chrono::seconds(20)));
  // Into its second step (reserve comes third): kill it there.
  ASSERT_TRUE(wait_until([&] { return status(stack.port(), bearer, id).value("progress", 0) > 0; },
                         std::chrono::seconds(20)));
  EXPECT_EQ(stack.stop_worker(runner, SIGKILL), 128 + SIGKILL);
  const std::size_t other = 1 - runner;
  ASSERT_TRUE(
      wait_until([&] { return completed(stack.port(), bearer, id); }, std::chrono::seconds(60)))
      << stack.worker_log(other);
  // (Its log line follows the saved outcome by a moment.)
  EXPECT_TRUE(wait_until(
      [&] {
        return stack.worker_log(other).find("process " + id + ": completed") != std::string::npos;
      },
      std::chrono::seconds(10)))
      << stack.worker_log(other) << "\n----\n"
      << stack.worker_log(runner);
  auto stock = stack.admin({"stock", "--json"});
  ASSERT_EQ(stock.exit_code, 0) << stock.err;
  const auto lines = json::parse(stock.out)["skus"];
  bool found = false;
  for (const auto& line : lines) {
    if (line.value("sku", "") == "SKU-K") {
      found = true;
      EXPECT_EQ(line.value("reserved", 0), 7) << stock.out;
    }
  }
  EXPECT_TRUE(found) << stock.out;
}

// kill -9 of one gateway while clients submit through both: every 202 answered is a
// process that exists and completes; a client whose gateway died sends the same key to the
// other one and gets one process, not two.
TEST(ScaleOut, AKilledGatewayLosesNoAcceptedRequest) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  options.step_duration = "10ms";
  Stack stack(options);
  const std::string bearer = token(stack, stack.port());
  ASSERT_FALSE(bearer.empty());
  // Each client sends at least kEach keys and goes on until it has sent one after the kill
  // (so that the kill comes while clients are sending, however the machine schedules
  // them), at most kMost.
  constexpr int kClients = 4, kEach = 8, kMost = 200;
  std::mutex mutex;
  std::map<std::string, std::string> accepted;  // key -> process id
  std::atomic<int> sent{0}, resent{0}, duplicates{0}, failures{0};
  std::atomic<bool> killed{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      bool one_after_kill = false;
      for (int n = 0; n < kMost; ++n) {
        if (one_after_kill && n >= kEach) break;
        one_after_kill = killed.load();  // this key goes after the kill
        ++sent;
        const std::string key = "gw-" + std::to_string(c) + "-" + std::to_string(n);
        auto res = submit(stack.gateway_port(1), bearer, key);
        if (!res || res->status != 202) {
          ++resent;
          res = submit(stack.gateway_port(0), bearer, key);
        }
        if (!res || res->status != 202) {
          ++failures;
          continue;
        }
        std::lock_guard lock(mutex);
        const std::string id = json::parse(res->body)["processId"];
        if (!accepted.emplace(key, id).second) ++duplicates;
      }
    });
  }
  EXPECT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mutex);
        return accepted.size() >= 6;
      },
      std::chrono::seconds(30)));
  EXPECT_EQ(stack.gateway(1)->stop(SIGKILL), 128 + SIGKILL);
  killed = true;
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(duplicates, 0);
  EXPECT_GT(resent, 0);  // the kill came while clients were sending
  ASSERT_GE(sent, kClients * kEach);
  ASSERT_EQ(accepted.size(), static_cast<std::size_t>(sent.load()));
  std::set<std::string> ids;
  for (const auto& [key, id] : accepted)
    ids.insert(id);
  EXPECT_EQ(ids.size(), accepted.size());
  for (const auto& [key, id] : accepted) {
    EXPECT_TRUE(
        wait_until([&] { return completed(stack.port(), bearer, id); }, std::chrono::seconds(60)))
        << key << " " << id;
  }
  // The killed gateway may have answered some of these before their acceptance was
  // recorded (3 to 5 in each of four runs here): the sweep recorded each such one late.
  // Every process has its acceptance once, and the trail verifies.
  auto exported = stack.admin({"audit", "export", "--since", "1h"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::map<std::string, int> acceptances;
  std::istringstream lines(exported.out);
  for (std::string line; std::getline(lines, line);) {
    const auto record = json::parse(line, nullptr, false);
    if (record.is_object() && record.value("to", "") == "accepted") {
      ++acceptances[record.value("processId", "")];
    }
  }
  for (const auto& id : ids)
    EXPECT_EQ(acceptances[id], 1) << id;
  auto intact = stack.admin({"audit", "verify"});
  EXPECT_EQ(intact.exit_code, 0) << intact.err << intact.out;
}

// redis-server restarted (AOF fsync always) under submissions: nothing acknowledged is
// lost, and the processes still run.
TEST(ScaleOut, RestartingRedisLosesNothingAcknowledged) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  options.redis_aof_always = true;
  options.step_duration = "10ms";
  Stack stack(options);
  const std::string bearer = token(stack, stack.port());
  std::vector<std::string> ids;
  for (int n = 0; n < 20; ++n) {
    if (n == 10) {
      stack.redis().stop();
      ASSERT_TRUE(stack.redis().start()) << stack.redis().error();
    }
    auto res = submit(stack.gateway_port(static_cast<std::size_t>(n % 2)), bearer,
                      "redis-" + std::to_string(n));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    ids.push_back(json::parse(res->body)["processId"]);
  }
  for (const auto& id : ids) {
    EXPECT_TRUE(wait_until([&] { return completed(stack.gateway_port(1), bearer, id); },
                           std::chrono::seconds(60)))
        << id;
  }
}

// A client revoked (by the admin command) is refused by both gateways within a second (each
// trusts its last check for 250 ms), a rotated one is accepted with either secret by both,
// and tenants stay apart across gateways.
TEST(ScaleOut, RevocationRotationAndTenantsHoldAcrossGateways) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  Stack stack(options);
  const std::string bearer = token(stack, stack.port());
  auto res = submit(stack.port(), bearer, "mine");
  ASSERT_TRUE(res && res->status == 202);
  const std::string id = json::parse(res->body)["processId"];

  auto other =
      stack.admin({"client", "add", "--tenant", "globex", "--process-types", "order", "--json"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  const auto globex = json::parse(other.out);
  httplib::Client second("127.0.0.1", stack.gateway_port(1));
  auto globex_token = second.Post(
      "/oauth/token",
      "grant_type=client_credentials&client_id=" + globex["clientId"].get<std::string>() +
          "&client_secret=" + globex["clientSecret"].get<std::string>(),
      "application/x-www-form-urlencoded");
  ASSERT_TRUE(globex_token && globex_token->status == 200);
  auto peek = second.Get(
      "/api/stargate/processes/" + id,
      {{"Authorization",
        "Bearer " + json::parse(globex_token->body)["access_token"].get<std::string>()}});
  ASSERT_TRUE(peek);
  EXPECT_EQ(peek->status, 404);

  // A rotation on this backend: both secrets work through either gateway during the grace.
  const std::string globex_id = globex["clientId"];
  auto rotated = stack.admin({"client", "rotate", globex_id, "--grace", "1h", "--json"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  const std::string new_secret = json::parse(rotated.out)["clientSecret"];
  for (const auto& secret : {globex["clientSecret"].get<std::string>(), new_secret}) {
    for (std::size_t i = 0; i < 2; ++i) {
      httplib::Client http("127.0.0.1", stack.gateway_port(i));
      auto got = http.Post(
          "/oauth/token",
          "grant_type=client_credentials&client_id=" + globex_id + "&client_secret=" + secret,
          "application/x-www-form-urlencoded");
      ASSERT_TRUE(got);
      EXPECT_EQ(got->status, 200) << "gateway " << i;
    }
  }

  ASSERT_EQ(stack.admin({"client", "revoke", stack.client_id()}).exit_code, 0);
  for (std::size_t i = 0; i < 2; ++i) {
    httplib::Client http("127.0.0.1", stack.gateway_port(i));
    int status = 0;
    EXPECT_TRUE(wait_until(
        [&] {
          auto refused =
              http.Get("/api/stargate/processes/" + id, {{"Authorization", "Bearer " + bearer}});
          status = refused ? refused->status : 0;
          return status == 401;
        },
        std::chrono::seconds(1)))
        << "gateway " << i << " answered " << status;
  }
}

// MongoDB stopped: 503 with Retry-After (never 500, never a hang), readiness names it; then
// it comes back and everything works again without a restart. Redis stopped: submissions
// go on (the record is in MongoDB), readiness names it; back, it is ready again.
TEST(ScaleOut, OutagesOfEitherEngineAreReportedAndRecoverWithoutARestart) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  Stack stack(options);
  if (!stack.mongo().own_process()) GTEST_SKIP() << "needs a MongoDB the test can stop";
  const std::string bearer = token(stack, stack.port());
  ASSERT_TRUE(submit(stack.port(), bearer, "before"));

  stack.mongo().stop(true);
  auto during = submit(stack.gateway_port(1), bearer, "during-mongo");
  ASSERT_TRUE(during);
  EXPECT_EQ(during->status, 503) << during->body;
  EXPECT_TRUE(during->has_header("Retry-After"));
  httplib::Client http("127.0.0.1", stack.port());
  auto ready = http.Get("/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("mongodb"), std::string::npos) << ready->body;
  ASSERT_TRUE(stack.mongo().start()) << stack.mongo().error();
  ASSERT_TRUE(wait_until([&] { return http.Get("/health/ready")->status == 200; },
                         std::chrono::seconds(30)));
  auto after = submit(stack.gateway_port(1), bearer, "during-mongo");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 202) << after->body;
  const std::string after_id = json::parse(after->body)["processId"];

  stack.redis().stop(true);
  auto without_redis = submit(stack.port(), bearer, "during-redis");
  ASSERT_TRUE(without_redis);
  EXPECT_EQ(without_redis->status, 202) << without_redis->body;
  ready = http.Get("/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_NE(ready->body.find("redis"), std::string::npos) << ready->body;
  ASSERT_TRUE(stack.redis().start()) << stack.redis().error();
  ASSERT_TRUE(wait_until([&] { return http.Get("/health/ready")->status == 200; },
                         std::chrono::seconds(30)));
  EXPECT_TRUE(wait_until([&] { return completed(stack.port(), bearer, after_id); },
                         std::chrono::seconds(30)));
}

// Redis stopped for 30 s and restarted empty: as documented, the gateways keep accepting
// (the record is in MongoDB; each gateway limits tenants on its own meanwhile) and keep
// answering status, each request within its deadline and never with a 500; once Redis is
// back, every process accepted meanwhile runs, with no restart, and none is duplicated.
TEST(ScaleOut, RedisStoppedForThirtySecondsLosesAndDuplicatesNothing) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  options.step_duration = "10ms";
  Stack stack(options);
  const std::string bearer = token(stack, stack.port());
  ASSERT_FALSE(bearer.empty());
  std::map<std::string, std::string> accepted;  // key -> process id
  stack.redis().stop(true);
  const auto stopped = std::chrono::steady_clock::now();
  for (int n = 0; std::chrono::steady_clock::now() - stopped < std::chrono::seconds(30); ++n) {
    const std::string key = "no-redis-" + std::to_string(n);
    const auto sent = std::chrono::steady_clock::now();
    auto res = submit(stack.gateway_port(n % 2), bearer, key);
    ASSERT_TRUE(res) << key << ": no answer";
    EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(10)) << key;
    ASSERT_EQ(res->status, 202) << key << " " << res->body;
    const std::string id = json::parse(res->body)["processId"];
    accepted.emplace(key, id);
    auto view = status(stack.gateway_port((n + 1) % 2), bearer, id);
    EXPECT_EQ(view.value("processId", ""), id) << view.dump();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  ASSERT_GE(accepted.size(), 10u);
  ASSERT_TRUE(stack.redis().start()) << stack.redis().error();
  for (const auto& [key, id] : accepted) {
    EXPECT_TRUE(
        wait_until([&] { return completed(stack.port(), bearer, id); }, std::chrono::seconds(60)))
        << key << " " << id;
  }
  for (const auto& [key, id] : accepted) {
    auto again = submit(stack.gateway_port(1), bearer, key);
    for (int tries = 0; again && again->status == 429 && tries < 30; ++tries) {
      std::this_thread::sleep_for(std::chrono::seconds(1));  // the tenant's limit: wait
      again = submit(stack.gateway_port(1), bearer, key);
    }
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 202) << again->body;  // a replay: the same answer
    EXPECT_EQ(json::parse(again->body).value("processId", ""), id);
  }
}

// audit verify on MongoDB: intact after all of it, broken once a record is edited there.
TEST(ScaleOut, AuditVerifyOnMongoCatchesAnEditedRecord) {
  StackOptions options;
  options.scale_out = true;
  Stack stack(options);
  ASSERT_EQ(stack.cli({"submit", "order", "--data", kTwoUnits, "--wait"}).exit_code, 0);
  auto intact = stack.admin({"audit", "verify"});
  ASSERT_EQ(intact.exit_code, 0) << intact.err << intact.out;
  auto exported = stack.admin({"audit", "export", "--since", "1h"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_NE(exported.out.find("\"to\":\"completed\""), std::string::npos);

  auto mongo = server::mongo::Client::open(stack.mongo().uri());
  ASSERT_TRUE(mongo) << mongo.error();
  // The block that holds the record of the order's completion, that record edited.
  std::string id;
  std::string records;
  ASSERT_TRUE((*mongo)->find("audit", json::object(), {}, [&](json& doc) {
    if (!id.empty() || doc.dump().find(R"(\"to\":\"completed)") == std::string::npos) return;
    id = doc["_id"];
    records = doc["records"];
  }));
  ASSERT_FALSE(id.empty());
  const auto at = records.find(R"("to":"completed")");
  ASSERT_NE(at, std::string::npos);
  records.replace(at + 6, 9, "failed");  // past "to":"
  ASSERT_TRUE((*mongo)->write(
      "update", "audit",
      {{"updates",
        json::array({{{"q", {{"_id", id}}}, {"u", {{"$set", {{"records", records}}}}}}})}}));
  auto broken = stack.admin({"audit", "verify"});
  EXPECT_EQ(broken.exit_code, 1) << broken.out;
  EXPECT_NE(broken.out.find("BROKEN"), std::string::npos) << broken.out;
}

}  // namespace
}  // namespace stargate::test
