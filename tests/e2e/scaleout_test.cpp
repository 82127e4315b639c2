// The scale-out mode end to end: real redis-server, a real MongoDB-compatible server
// (FerretDB, or the mongod of STARGATE_TEST_MONGODB_URI), two `stargate-server gateway`
// and two `stargate-server worker` processes, the unchanged daemon and CLI: what they do
// together (scaleout_faults_test.cpp: what they survive).
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "server/store/mongo/mongo_client.hpp"
#include "tests/e2e/scaleout.hpp"
#include "tests/support/socket_client.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

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
  const auto bearer = token_at(stack, stack.gateway_port(1));
  EXPECT_TRUE(completed_at(stack.gateway_port(1), bearer, id));
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
  Stack stack(without_daemon());
  const std::string bearer = token_at(stack, stack.port());
  ASSERT_FALSE(bearer.empty());
  std::mutex mutex;
  std::set<std::string> ids;
  std::atomic<int> accepted{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&, i] {
      auto res = submit_to(stack.gateway_port(static_cast<std::size_t>(i % 2)), bearer, "same-key");
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
  auto options = without_daemon();
  options.workers = 1;
  options.server_extra = "[rate_limit]\nper_minute = 30\nburst = 5\n";
  Stack stack(options);
  const std::string bearer = token_at(stack, stack.port());
  ASSERT_FALSE(bearer.empty());
  const auto start = std::chrono::steady_clock::now();
  int accepted = 0, limited = 0;
  for (int i = 0; i < 40; ++i) {
    auto res = submit_to(stack.gateway_port(static_cast<std::size_t>(i % 2)), bearer,
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

// A client revoked (by the admin command) is refused by both gateways within a second (each
// trusts its last check for 250 ms), a rotated one is accepted with either secret by both,
// and tenants stay apart across gateways.
TEST(ScaleOut, RevocationRotationAndTenantsHoldAcrossGateways) {
  Stack stack(without_daemon());
  const std::string bearer = token_at(stack, stack.port());
  auto res = submit_to(stack.port(), bearer, "mine");
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
