// The scale-out mode end to end, what it survives: a worker or a gateway killed with
// SIGKILL under load, redis-server restarted or stopped for 30 s, MongoDB stopped. Real
// engines and programs, as in scaleout_test.cpp; nothing accepted is lost or run twice.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/e2e/scaleout.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// kill -9 of the worker running an order: the other worker takes it over once the lease
// ends and finishes it; the stock is reserved once.
TEST(ScaleOut, AKilledWorkersProcessIsFinishedByTheOtherOnce) {
  auto options = without_daemon("1s");
  options.lease = "3s";
  Stack stack(options);
  const std::string bearer = token_at(stack, stack.port());
  auto res = submit_to(stack.port(), bearer, "kill-me",
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
  ASSERT_TRUE(
      wait_until([&] { return status_at(stack.port(), bearer, id).value("progress", 0) > 0; },
                 std::chrono::seconds(20)));
  EXPECT_EQ(stack.stop_worker(runner, SIGKILL), 128 + SIGKILL);
  const std::size_t other = 1 - runner;
  ASSERT_TRUE(
      wait_until([&] { return completed_at(stack.port(), bearer, id); }, std::chrono::seconds(60)))
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
  Stack stack(without_daemon("10ms"));
  const std::string bearer = token_at(stack, stack.port());
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
        auto res = submit_to(stack.gateway_port(1), bearer, key);
        if (!res || res->status != 202) {
          ++resent;
          res = submit_to(stack.gateway_port(0), bearer, key);
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
    EXPECT_TRUE(wait_until([&] { return completed_at(stack.port(), bearer, id); },
                           std::chrono::seconds(60)))
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
  auto options = without_daemon("10ms");
  options.redis_aof_always = true;
  Stack stack(options);
  const std::string bearer = token_at(stack, stack.port());
  std::vector<std::string> ids;
  for (int n = 0; n < 20; ++n) {
    if (n == 10) {
      stack.redis().stop();
      ASSERT_TRUE(stack.redis().start()) << stack.redis().error();
    }
    auto res = submit_to(stack.gateway_port(static_cast<std::size_t>(n % 2)), bearer,
                         "redis-" + std::to_string(n));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    ids.push_back(json::parse(res->body)["processId"]);
  }
  for (const auto& id : ids) {
    EXPECT_TRUE(wait_until([&] { return completed_at(stack.gateway_port(1), bearer, id); },
                           std::chrono::seconds(60)))
        << id;
  }
}

// MongoDB stopped: 503 with Retry-After (never 500, never a hang), readiness names it; then
// it comes back and everything works again without a restart. Redis stopped: submissions
// go on (the record is in MongoDB), readiness names it; back, it is ready again.
TEST(ScaleOut, OutagesOfEitherEngineAreReportedAndRecoverWithoutARestart) {
  Stack stack(without_daemon());
  if (!stack.mongo().own_process()) GTEST_SKIP() << "needs a MongoDB the test can stop";
  const std::string bearer = token_at(stack, stack.port());
  ASSERT_TRUE(submit_to(stack.port(), bearer, "before"));

  stack.mongo().stop(true);
  auto during = submit_to(stack.gateway_port(1), bearer, "during-mongo");
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
  auto after = submit_to(stack.gateway_port(1), bearer, "during-mongo");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 202) << after->body;
  const std::string after_id = json::parse(after->body)["processId"];

  stack.redis().stop(true);
  auto without_redis = submit_to(stack.port(), bearer, "during-redis");
  ASSERT_TRUE(without_redis);
  EXPECT_EQ(without_redis->status, 202) << without_redis->body;
  ready = http.Get("/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_NE(ready->body.find("redis"), std::string::npos) << ready->body;
  ASSERT_TRUE(stack.redis().start()) << stack.redis().error();
  ASSERT_TRUE(wait_until([&] { return http.Get("/health/ready")->status == 200; },
                         std::chrono::seconds(30)));
  EXPECT_TRUE(wait_until([&] { return completed_at(stack.port(), bearer, after_id); },
                         std::chrono::seconds(30)));
}

// Redis stopped for 30 s and restarted empty: as documented, the gateways keep accepting
// (the record is in MongoDB; each gateway limits tenants on its own meanwhile) and keep
// answering status, each request within its deadline and never with a 500; once Redis is
// back, every process accepted meanwhile runs, with no restart, and none is duplicated.
TEST(ScaleOut, RedisStoppedForThirtySecondsLosesAndDuplicatesNothing) {
  Stack stack(without_daemon("10ms"));
  const std::string bearer = token_at(stack, stack.port());
  ASSERT_FALSE(bearer.empty());
  std::map<std::string, std::string> accepted;  // key -> process id
  stack.redis().stop(true);
  const auto stopped = std::chrono::steady_clock::now();
  for (int n = 0; std::chrono::steady_clock::now() - stopped < std::chrono::seconds(30); ++n) {
    const std::string key = "no-redis-" + std::to_string(n);
    const auto sent = std::chrono::steady_clock::now();
    auto res = submit_to(stack.gateway_port(n % 2), bearer, key);
    ASSERT_TRUE(res) << key << ": no answer";
    EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(10)) << key;
    ASSERT_EQ(res->status, 202) << key << " " << res->body;
    const std::string id = json::parse(res->body)["processId"];
    accepted.emplace(key, id);
    auto view = status_at(stack.gateway_port((n + 1) % 2), bearer, id);
    EXPECT_EQ(view.value("processId", ""), id) << view.dump();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  ASSERT_GE(accepted.size(), 10u);
  ASSERT_TRUE(stack.redis().start()) << stack.redis().error();
  for (const auto& [key, id] : accepted) {
    EXPECT_TRUE(wait_until([&] { return completed_at(stack.port(), bearer, id); },
                           std::chrono::seconds(60)))
        << key << " " << id;
  }
  for (const auto& [key, id] : accepted) {
    auto again = submit_to(stack.gateway_port(1), bearer, key);
    for (int tries = 0; again && again->status == 429 && tries < 30; ++tries) {
      std::this_thread::sleep_for(std::chrono::seconds(1));  // the tenant's limit: wait
      again = submit_to(stack.gateway_port(1), bearer, key);
    }
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 202) << again->body;  // a replay: the same answer
    EXPECT_EQ(json::parse(again->body).value("processId", ""), id);
  }
}

}  // namespace
}  // namespace stargate::test
