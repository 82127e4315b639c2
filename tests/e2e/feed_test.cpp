// stargated following processes through the gateway's change feed, with the real binaries
// on loopback: completions seen long before the seed schedule would poll, a gateway without
// the feed polled on the schedule, a cursor kept across kill -9, a cursor the gateway no
// longer knows, and a tenant near its rate limit that is never refused.
#include <signal.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <thread>

#include "shared/sqlite.hpp"
#include "tests/e2e/orders.hpp"
#include "tests/support/socket_client.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

httplib::Result submit(httplib::Client& client, const std::string& id) {
  return client.Post(
      "/v1/processes",
      json{{"processType", "order"}, {"clientProcessId", id}, {"data", json::parse(kOrder)}}.dump(),
      "application/json");
}

std::string state(httplib::Client& client, const std::string& id) {
  auto res = client.Get("/v1/processes/" + id);
  return res && res->status == 200 ? json::parse(res->body).value("state", "") : "";
}

std::string polling(httplib::Client& client) {
  auto res = client.Get("/v1/health");
  return res && res->status == 200 ? json::parse(res->body)["gateway"].value("polling", "") : "";
}

// The server's count of requests on one route (all statuses), from its /metrics.
long server_requests(const Stack& stack, const std::string& method, const std::string& route) {
  httplib::Client http("127.0.0.1", stack.port());
  auto page = http.Get("/metrics");
  if (!page || page->status != 200) return -1;
  const std::regex line("stargate_http_requests_total\\{method=\"" + method + "\",route=\"" +
                        route + "\",status=\"[0-9]+\"\\} ([0-9]+)");
  long total = 0;
  for (std::sregex_iterator it(page->body.begin(), page->body.end(), line), end; it != end; ++it)
    total += std::stol((*it)[1]);
  return total;
}

std::string server_metrics(const Stack& stack) {
  httplib::Client http("127.0.0.1", stack.port());
  auto page = http.Get("/metrics");
  return page ? page->body : "";
}

// The seed's schedule: the first poll after the 202 at once, then only after 30 s. A
// process that takes about a second is noticed through the feed long before that.
StackOptions feed_stack() {
  StackOptions options;
  options.step_duration = "250ms";
  options.fast_interval = "30s";
  options.server_extra = "[rate_limit]\nper_minute = 1000000\nburst = 100000\n";
  return options;
}

constexpr const char* kStatusRoute = "/api/stargate/processes/:id";
constexpr const char* kChangesRoute = "/api/stargate/processes/changes";

TEST(Feed, ACompletionIsSeenLongBeforeTheScheduleWouldPoll) {
  Stack stack(feed_stack());
  auto client = socket_client(stack.socket());
  ASSERT_TRUE(wait_until([&] { return polling(*client) == "feed"; }, 10s)) << stack.daemon_log();
  ASSERT_EQ(submit(*client, "quick-1")->status, 202);
  // Generous, but well short of the 30 s after which the schedule would look again.
  ASSERT_TRUE(wait_until([&] { return state(*client, "quick-1") == "completed"; }, 20s))
      << stack.daemon_log();
  // It never read the process on its own: the feed told it everything.
  EXPECT_EQ(server_requests(stack, "GET", kStatusRoute), 0);
  EXPECT_GE(server_requests(stack, "GET", kChangesRoute), 1);
  auto record = json::parse(client->Get("/v1/processes/quick-1")->body);
  EXPECT_EQ(record["result"]["status"], "confirmed");
  EXPECT_EQ(record["progress"], 100);
  const auto health = stack.cli({"health"});
  EXPECT_NE(health.out.find("through the gateway's change feed"), std::string::npos) << health.out;
}

TEST(Feed, ALateProcessIsStillWarnedOfOnceWhileTheFeedIsUsed) {
  auto options = feed_stack();
  options.step_duration = "400ms";
  options.fast_interval = "200ms";  // how often the daemon looks for late processes
  options.daemon_extra = "[process_types.order]\ntimeout = \"500ms\"\n";
  Stack stack(options);
  auto client = socket_client(stack.socket());
  ASSERT_TRUE(wait_until([&] { return polling(*client) == "feed"; }, 10s));
  ASSERT_EQ(submit(*client, "late-1")->status, 202);
  ASSERT_TRUE(wait_until([&] { return state(*client, "late-1") == "completed"; }, 20s));
  const auto log = stack.daemon_log();
  EXPECT_EQ(count(log, "not finished after 500ms; still following it through the change feed"), 1u)
      << log;
  // Read once at the warning (in case the feed missed its change), else never on its own.
  EXPECT_EQ(server_requests(stack, "GET", kStatusRoute), 1);
}

TEST(Feed, AGatewayWithoutTheFeedIsPolledOnTheSchedule) {
  auto options = feed_stack();
  options.fast_interval = "200ms";
  options.server_extra += "[feed]\nenabled = false\n";
  Stack stack(options);
  auto client = socket_client(stack.socket());
  ASSERT_EQ(submit(*client, "polled-1")->status, 202);
  ASSERT_TRUE(wait_until([&] { return state(*client, "polled-1") == "completed"; }, 30s))
      << stack.daemon_log();
  EXPECT_EQ(polling(*client), "schedule");
  EXPECT_GE(server_requests(stack, "GET", kStatusRoute), 2);   // at once, then on the schedule
  EXPECT_EQ(server_requests(stack, "GET", kChangesRoute), 0);  // never asked: not offered
}

TEST(Feed, AfterKillNineTheDaemonGoesOnFromItsCursorAndMissesNothing) {
  auto options = feed_stack();
  options.step_duration = "1s";  // four steps: time to kill the daemon mid-order
  Stack stack(options);
  auto client = socket_client(stack.socket());
  ASSERT_TRUE(wait_until([&] { return polling(*client) == "feed"; }, 10s));
  ASSERT_EQ(submit(*client, "long-1")->status, 202);
  ASSERT_TRUE(wait_until([&] { return state(*client, "long-1") == "processing"; }, 10s));
  stack.stop_daemon(SIGKILL);
  {
    db::Database queue(stack.dir().file("daemon/queue.db"));
    auto saved = queue.prepare("SELECT count(*) FROM feed_cursors");
    ASSERT_TRUE(saved.step());
    EXPECT_EQ(saved.integer(0), 1);
  }
  // It completes while no daemon listens.
  ASSERT_TRUE(wait_until(
      [&] { return stack.server_log().find(": completed in ") != std::string::npos; }, 20s))
      << stack.server_log();
  const long status_reads = server_requests(stack, "GET", kStatusRoute);
  stack.start_daemon();
  client = socket_client(stack.socket());
  ASSERT_TRUE(wait_until([&] { return state(*client, "long-1") == "completed"; }, 20s))
      << stack.daemon_log();
  EXPECT_NE(stack.daemon_log().find("from the saved cursor"), std::string::npos);
  // The change came through the feed from the saved cursor, not from reading the process.
  EXPECT_EQ(server_requests(stack, "GET", kStatusRoute), status_reads);
}

TEST(Feed, ACursorTheGatewayNoLongerKnowsIsResynchronised) {
  Stack stack(feed_stack());
  auto client = socket_client(stack.socket());
  ASSERT_TRUE(wait_until([&] { return polling(*client) == "feed"; }, 10s));
  ASSERT_EQ(submit(*client, "gone-1")->status, 202);
  ASSERT_TRUE(wait_until([&] { return state(*client, "gone-1") != "queued"; }, 10s));
  // The process ends while no daemon listens, and the cursor the daemon kept is one the
  // gateway does not know (as after its database was replaced): only reading the process
  // can tell the daemon how it ended.
  stack.stop_daemon(SIGKILL);
  ASSERT_TRUE(wait_until(
      [&] { return stack.server_log().find(": completed in ") != std::string::npos; }, 20s))
      << stack.server_log();
  {
    db::Database queue(stack.dir().file("daemon/queue.db"));
    queue.exec("UPDATE feed_cursors SET cursor = '00000000deadbeef-1'");
  }
  const long status_reads = server_requests(stack, "GET", kStatusRoute);
  stack.start_daemon();
  client = socket_client(stack.socket());
  ASSERT_TRUE(wait_until([&] { return state(*client, "gone-1") == "completed"; }, 20s))
      << stack.daemon_log();
  const auto log = stack.daemon_log();
  EXPECT_NE(log.find("no longer knows the cursor"), std::string::npos) << log;
  EXPECT_EQ(server_requests(stack, "GET", kStatusRoute), status_reads + 1);  // read once
  EXPECT_NE(server_metrics(stack).find("status=\"410\""), std::string::npos);
  EXPECT_EQ(polling(*client), "feed");  // and following the feed again
}

// 500 requests queued at once by a tenant allowed 2,400 a minute with a burst of 20: the
// daemon paces itself from X-RateLimit-*, sends them all, and is never refused.
TEST(Feed, ATenantNearItsLimitSlowsDownInsteadOfBeingRefused) {
  auto options = feed_stack();
  options.step_duration = "1ms";
  options.server_extra =
      "[rate_limit]\nper_minute = 2400\nburst = 20\n"
      "[order.stock]\n\"SKU-001\" = 1000000\n";
  options.server_settings = "http_threads = 8\n";
  Stack stack(options);
  auto client = socket_client(stack.socket());
  std::vector<std::thread> threads;
  for (int t = 0; t < 10; ++t) {
    threads.emplace_back([&, t] {
      auto own = socket_client(stack.socket());
      for (int i = 0; i < 50; ++i)
        EXPECT_EQ(submit(*own, "paced-" + std::to_string(t) + "-" + std::to_string(i))->status,
                  202);
    });
  }
  for (auto& thread : threads)
    thread.join();
  ASSERT_TRUE(wait_until(
      [&] {
        auto res = client->Get("/v1/processes?state=completed&limit=1000");
        return res && json::parse(res->body)["processes"].size() == 500;
      },
      120s))
      << stack.daemon_log();
  const auto metrics = server_metrics(stack);
  EXPECT_EQ(metrics.find("stargate_rate_limit_refusals_total{"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("status=\"429\""), std::string::npos) << metrics;
  EXPECT_EQ(server_requests(stack, "POST", "/api/stargate/processes"), 500);
}

}  // namespace
}  // namespace stargate::test
