// Tests of the gateway's change feed over real HTTP: what it answers and to whom, long
// polls woken by a change, the bound on parked requests, and a feed switched off.
#include <future>
#include <set>

#include "tests/server/http_api_fixture.hpp"

namespace stargate::server::fixtures {
namespace {

using json = nlohmann::json;

constexpr const char* kChanges = "/api/stargate/processes/changes";

class ChangeFeedTest : public HttpApiTest {
 protected:
  json changes(const std::string& token, const std::string& query, int expect = 200) {
    auto res = get(token, std::string(kChanges) + query);
    EXPECT_TRUE(res);
    if (!res) return json();
    EXPECT_EQ(res->status, expect) << res->body;
    return json::parse(res->body);
  }

  std::string start(const std::string& token) {
    const json page = changes(token, "");
    EXPECT_TRUE(page["changes"].empty());
    return page["cursor"];
  }

  // A second gateway on the same store with its own configuration; stopped at the end.
  struct Gateway {
    ServerConfig config;  // the API keeps a reference to it
    std::unique_ptr<HttpApi> api;
    std::thread thread;
    std::unique_ptr<httplib::Client> client;
    int port = 0;
    ~Gateway() {
      api->stop();
      thread.join();
    }
  };
  // A second gateway with `threads` HTTP threads and `parked` places for long polls, at
  // most `per_tenant` (0: the default share) of one tenant.
  std::unique_ptr<Gateway> parking_gateway(std::size_t threads, std::size_t parked,
                                           std::size_t per_tenant = 0) {
    ServerConfig config = config_;
    config.http.threads = threads;
    config.feed_max_parked = parked;
    config.feed_max_parked_per_tenant = per_tenant;
    return gateway(config);
  }
  std::unique_ptr<Gateway> gateway(const ServerConfig& config) {
    auto out = std::make_unique<Gateway>();
    out->config = config;
    out->api = std::make_unique<HttpApi>(out->config, *store_, engine_.get(), signer_, *limiter_,
                                         *audit_, metrics_);
    const int port = *out->api->bind("127.0.0.1", 0);
    out->thread = std::thread([api = out->api.get()] { api->serve(); });
    out->client = std::make_unique<httplib::Client>("127.0.0.1", port);
    out->port = port;
    out->client->set_read_timeout(30s);
    return out;
  }
};

TEST_F(ChangeFeedTest, OfferedOnTokenSubmitAndStatusAnswers) {
  auto granted = token_request({{"grant_type", "client_credentials"},
                                {"client_id", "acme-order"},
                                {"client_secret", "secret-acme-order"}});
  EXPECT_EQ(granted->get_header_value("X-StarGate-Feed"), kChanges);
  const auto t = token("acme-order");
  auto submitted = submit(t, order_body("k1"));
  EXPECT_EQ(submitted->get_header_value("X-StarGate-Feed"), kChanges);
  const std::string id = json::parse(submitted->body)["processId"];
  EXPECT_EQ(get(t, "/api/stargate/processes/" + id)->get_header_value("X-StarGate-Feed"), kChanges);
}

TEST_F(ChangeFeedTest, ALongPollIsAnsweredByTheNextChangeAndFollowsItToTheEnd) {
  const auto t = token("acme-order");
  std::string cursor = start(t);
  // Parked first, then woken by the submit.
  auto parked = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(30s);
    return client.Get(std::string(kChanges) + "?wait=20s&cursor=" + cursor,
                      {{"Authorization", "Bearer " + t}});
  });
  ASSERT_TRUE(test::wait_until(
      [&] {
        return client_->Get("/metrics")->body.find("stargate_feed_parked 1") != std::string::npos;
      },
      10s));
  const std::string id = json::parse(submit(t, order_body("k1"))->body)["processId"];
  auto woken = parked.get();
  ASSERT_TRUE(woken);
  ASSERT_EQ(woken->status, 200) << woken->body;
  EXPECT_EQ(woken->get_header_value("Cache-Control"), "no-store");
  json page = json::parse(woken->body);
  ASSERT_FALSE(page["changes"].empty());
  EXPECT_EQ(page["changes"][0]["processId"], id);
  EXPECT_EQ(page["changes"][0]["processType"], "order");
  EXPECT_NE(page["cursor"], cursor);
  // Long polls from each cursor on, until the completed answer (seed §11 body, result).
  std::string status = page["changes"].back()["status"];
  cursor = page["cursor"];
  for (int i = 0; i < 20 && status != "completed"; ++i) {
    page = changes(t, "?wait=10s&cursor=" + cursor);
    for (const auto& entry : page["changes"]) {
      EXPECT_EQ(entry["processId"], id);
      status = entry["status"];
      if (status == "completed") {
        EXPECT_EQ(entry["result"]["status"], "confirmed");
      }
    }
    cursor = page["cursor"];
  }
  EXPECT_EQ(status, "completed");
  // Nothing after the end: without wait, at once and with the same cursor.
  page = changes(t, "?cursor=" + cursor);
  EXPECT_TRUE(page["changes"].empty());
  EXPECT_EQ(page["cursor"], cursor);
  EXPECT_EQ(page["more"], false);
  const std::string metrics = client_->Get("/metrics")->body;
  EXPECT_NE(metrics.find("stargate_feed_wakeups_total "), std::string::npos);
  EXPECT_EQ(metrics.find("stargate_feed_wakeups_total 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("route=\"/api/stargate/processes/changes\",status=\"200\""),
            std::string::npos);
}

TEST_F(ChangeFeedTest, ACallerSeesOnlyItsTenantsProcessesOfTypesItMayUse) {
  const auto acme_order = token("acme-order");
  const auto acme_all = token("acme-all");
  const auto globex = token("globex");
  const std::string order_cursor = start(acme_order);
  const std::string all_cursor = start(acme_all);
  const std::string globex_cursor = start(globex);
  const std::string order = json::parse(submit(acme_order, order_body("k1"))->body)["processId"];
  auto shipping = json::parse(order_body("k2"));
  shipping["processType"] = "shipping";
  shipping["data"] = {{"shipmentId", "S1"}, {"items", {{{"sku", "SKU-001"}, {"quantity", 1}}}}};
  auto shipped = submit(acme_all, shipping.dump());
  ASSERT_EQ(shipped->status, 202) << shipped->body;
  const std::string shipment = json::parse(shipped->body)["processId"];

  const auto seen = [&](const std::string& t, const std::string& cursor) {
    std::set<std::string> ids;
    const json page = changes(t, "?limit=500&cursor=" + cursor);
    for (const auto& entry : page["changes"])
      ids.insert(entry["processId"].get<std::string>());
    return ids;
  };
  EXPECT_EQ(seen(acme_all, all_cursor), (std::set<std::string>{order, shipment}));
  EXPECT_EQ(seen(acme_order, order_cursor), std::set<std::string>{order});
  EXPECT_TRUE(seen(globex, globex_cursor).empty());
  // A cursor does not open another tenant's processes: it is a position, not a right.
  EXPECT_TRUE(seen(globex, order_cursor).empty());
}

TEST_F(ChangeFeedTest, BadParametersAndUnknownCursorsGetClearErrors) {
  const auto t = token("acme-order");
  const std::string cursor = start(t);
  for (const std::string& query : std::vector<std::string>{
           "?wait=forever", "?wait=-1", "?wait=10x", "?limit=0", "?limit=501", "?limit=ten",
           "?cursor=a/b", "?cursor=" + std::string(200, 'a'), "?cursor=%00", "?wait=9999999"}) {
    expect_error(get(t, std::string(kChanges) + query), 400, "INVALID_REQUEST");
  }
  expect_error(get(t, std::string(kChanges) + "?cursor=0123456789abcdef-1"), 410, "CURSOR_EXPIRED");
  auto gone = json::parse(get(t, std::string(kChanges) + "?cursor=x-1")->body);
  EXPECT_NE(gone["message"].get<std::string>().find("without a cursor"), std::string::npos);
  expect_error(client_->Get(kChanges), 401, "INVALID_TOKEN");
  // A wait beyond [feed] max_wait is cut to it, not refused; seconds work as well.
  EXPECT_EQ(changes(t, "?wait=0&cursor=" + cursor)["cursor"], cursor);
  EXPECT_EQ(changes(t, "?wait=0s&cursor=" + cursor)["cursor"], cursor);
}

TEST_F(ChangeFeedTest, WhenEveryPlaceIsTakenTheFeedAnswersAtOnceAndOthersGetThrough) {
  auto second = parking_gateway(4, 1);
  const auto t = token("acme-order");
  const std::string cursor = start(t);
  const httplib::Headers auth = {{"Authorization", "Bearer " + t}};
  auto parked = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", second->port);
    client.set_read_timeout(30s);
    return client.Get(std::string(kChanges) + "?wait=20s&cursor=" + cursor, auth);
  });
  ASSERT_TRUE(test::wait_until(
      [&] {
        return second->client->Get("/metrics")->body.find("stargate_feed_parked 1\n") !=
               std::string::npos;
      },
      10s));
  // The only place is taken: answered without waiting, told when to come back.
  auto full = second->client->Get(std::string(kChanges) + "?wait=20s&cursor=" + cursor, auth);
  ASSERT_EQ(full->status, 200) << full->body;
  const auto body = json::parse(full->body);
  EXPECT_TRUE(body["changes"].empty());
  EXPECT_EQ(body["cursor"], cursor);
  EXPECT_EQ(body["retryAfter"], 30);
  // The other threads still serve everything else.
  auto submitted =
      second->client->Post("/api/stargate/processes", auth, order_body("k1"), "application/json");
  ASSERT_EQ(submitted->status, 202);
  auto woken = parked.get();
  ASSERT_EQ(woken->status, 200);
  EXPECT_FALSE(json::parse(woken->body)["changes"].empty());
  const std::string metrics = second->client->Get("/metrics")->body;
  EXPECT_NE(metrics.find("stargate_feed_answers_total{reason=\"full\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("stargate_feed_parked_max 1\n"), std::string::npos);
}

TEST_F(ChangeFeedTest, OneTenantCannotTakeEveryPlace) {
  auto second = parking_gateway(6, 2, 1);
  const auto acme = token("acme-order");
  const auto globex = token("globex");
  const std::string acme_cursor = start(acme);
  const std::string globex_cursor = start(globex);
  const auto long_poll = [&](const std::string& t, const std::string& cursor) {
    return std::async(std::launch::async, [&, t, cursor] {
      httplib::Client client("127.0.0.1", second->port);
      client.set_read_timeout(30s);
      return client.Get(std::string(kChanges) + "?wait=20s&cursor=" + cursor,
                        {{"Authorization", "Bearer " + t}});
    });
  };
  const auto parked = [&](int n) {
    return test::wait_until(
        [&] {
          return second->client->Get("/metrics")
                     ->body.find("stargate_feed_parked " + std::to_string(n) + "\n") !=
                 std::string::npos;
        },
        10s);
  };
  auto acme_parked = long_poll(acme, acme_cursor);
  ASSERT_TRUE(parked(1));
  // acme holds its share: its next long poll is answered at once...
  auto refused = second->client->Get(std::string(kChanges) + "?wait=20s&cursor=" + acme_cursor,
                                     {{"Authorization", "Bearer " + acme}});
  ASSERT_EQ(refused->status, 200);
  EXPECT_EQ(json::parse(refused->body)["retryAfter"], 30);
  // ...while another tenant still finds a place.
  auto globex_parked = long_poll(globex, globex_cursor);
  ASSERT_TRUE(parked(2));
  ASSERT_EQ(submit(acme, order_body("k1"))->status, 202);
  ASSERT_EQ(submit(globex, order_body("g1"))->status, 202);
  EXPECT_FALSE(json::parse(acme_parked.get()->body)["changes"].empty());
  EXPECT_FALSE(json::parse(globex_parked.get()->body)["changes"].empty());
}

// A client that drops its long poll (here: gives up after a second and closes) frees its
// place within about a second, not at the end of the wait it asked for.
TEST_F(ChangeFeedTest, AClientThatLeavesGivesItsPlaceBack) {
  auto second = parking_gateway(4, 1, 1);
  const auto t = token("acme-order");
  const std::string cursor = start(t);
  const std::string query = std::string(kChanges) + "?wait=60s&cursor=" + cursor;
  const auto metrics = [&] { return second->client->Get("/metrics")->body; };
  {
    httplib::Client impatient("127.0.0.1", second->port);
    impatient.set_read_timeout(1s);
    EXPECT_FALSE(impatient.Get(query, {{"Authorization", "Bearer " + t}}));
  }  // closed
  ASSERT_TRUE(test::wait_until(
      [&] {
        return metrics().find("stargate_feed_answers_total{reason=\"left\"} 1\n") !=
               std::string::npos;
      },
      10s))
      << metrics();
  EXPECT_NE(metrics().find("stargate_feed_parked 0\n"), std::string::npos);
  // The place is free again: the next long poll parks, and a change answers it.
  auto parked = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", second->port);
    client.set_read_timeout(30s);
    return client.Get(query, {{"Authorization", "Bearer " + t}});
  });
  ASSERT_TRUE(test::wait_until(
      [&] { return metrics().find("stargate_feed_parked 1\n") != std::string::npos; }, 10s));
  ASSERT_EQ(submit(t, order_body("k1"))->status, 202);
  auto answer = parked.get();
  ASSERT_TRUE(answer);
  EXPECT_FALSE(json::parse(answer->body)["changes"].empty());
  EXPECT_FALSE(json::parse(answer->body).contains("retryAfter"));
}

TEST_F(ChangeFeedTest, StoppingTheServerAnswersParkedRequests) {
  auto second = gateway(config_);
  const auto t = token("acme-order");
  const std::string cursor = start(t);
  auto parked = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", second->port);
    client.set_read_timeout(30s);
    return client.Get(std::string(kChanges) + "?wait=60s&cursor=" + cursor,
                      {{"Authorization", "Bearer " + t}});
  });
  ASSERT_TRUE(test::wait_until(
      [&] {
        return second->client->Get("/metrics")->body.find("stargate_feed_parked 1\n") !=
               std::string::npos;
      },
      10s));
  second.reset();  // stop() and join: must not wait out the 60 s
  auto answer = parked.get();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(json::parse(answer->body)["cursor"], cursor);
}

TEST_F(ChangeFeedTest, AFeedSwitchedOffIsNeitherOfferedNorRouted) {
  ServerConfig config = config_;
  config.feed_enabled = false;
  auto second = gateway(config);
  auto granted =
      second->client->Post("/oauth/token", httplib::Params{{"grant_type", "client_credentials"},
                                                           {"client_id", "acme-order"},
                                                           {"client_secret", "secret-acme-order"}});
  ASSERT_EQ(granted->status, 200);
  EXPECT_FALSE(granted->has_header("X-StarGate-Feed"));
  const std::string t = json::parse(granted->body)["access_token"];
  auto res = second->client->Get(kChanges, {{"Authorization", "Bearer " + t}});
  // Not a route: taken for a process id, which it is not.
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(second->client->Get("/metrics")->body.find("stargate_feed_"), std::string::npos);
}

}  // namespace
}  // namespace stargate::server::fixtures
