// Tests of server/http_api.cpp: real HTTP on loopback against the gateway running in this
// process on a real SQLite store, with cpp-httplib's client.
#include "server/http_api.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "server/auth_throttle.hpp"
#include "server/builtin_handlers.hpp"
#include "server/metrics.hpp"
#include "server/sqlite_store.hpp"
#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.max_body_bytes = 256 * 1024;
    config_.process_types["order"].handler = "order";
    config_.process_types["shipping"].handler = "shipping";
    config_.order.step_duration = 10ms;
    config_.order.stock = {{"SKU-LOW", 1}};
    store_ = std::move(*SqliteStore::open(dir_.file("store.db")));
    add_client("acme-order", "acme", {"order"});
    add_client("acme-all", "acme", {"order", "shipping"});
    add_client("globex", "globex", {"order"});
    engine_ = std::make_unique<Engine>(
        *store_,
        std::map<std::string, std::shared_ptr<Handler>>{
            {"order", std::make_shared<OrderHandler>(config_.order, *store_)}},
        1, &metrics_);
    ASSERT_TRUE(engine_->start());
    limiter_ = std::make_unique<TokenBucketLimiter>(
        RateLimit{6000, 1000}, std::map<std::string, RateLimit>{{"globex", {60, 3}}});
    audit_ = std::make_unique<AuditLog>(*store_);
    api_ = std::make_unique<HttpApi>(config_, *store_, *engine_, signer_, *limiter_, *audit_,
                                     metrics_);
    port_ = *api_->bind("127.0.0.1", 0);
    thread_ = std::thread([this] { api_->serve(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(10s);
  }

  void TearDown() override {
    api_->stop();
    thread_.join();
    engine_->stop();
  }

  void add_client(const std::string& id, const std::string& tenant,
                  std::vector<std::string> types) {
    ClientRecord client{id,        tenant, *hash_secret("secret-" + id), std::move(types),
                        now_utc(), false};
    ASSERT_TRUE(store_->add_client(client));
  }

  httplib::Result token_request(const httplib::Params& form) {
    return client_->Post("/oauth/token", form);
  }

  std::string token(const std::string& id, const std::string& scope = "") {
    httplib::Params form = {
        {"grant_type", "client_credentials"}, {"client_id", id}, {"client_secret", "secret-" + id}};
    if (!scope.empty()) form.emplace("scope", scope);
    auto res = token_request(form);
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body)["access_token"];
  }

  httplib::Result submit(const std::string& token, const std::string& body,
                         const std::string& type = "application/json") {
    return client_->Post("/api/stargate/processes", {{"Authorization", "Bearer " + token}}, body,
                         type);
  }

  httplib::Result get(const std::string& token, const std::string& path) {
    return client_->Get(path, {{"Authorization", "Bearer " + token}});
  }

  static std::string order_body(const std::string& key, const std::string& sku = "SKU-001") {
    return json{{"clientProcessId", "cp-" + key},
                {"processType", "order"},
                {"data", {{"orderId", "ORD-1"}, {"items", {{{"sku", sku}, {"quantity", 2}}}}}},
                {"idempotencyKey", key}}
        .dump();
  }

  static void expect_error(const httplib::Result& res, int status, const std::string& code) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << res->body;
    const auto body = json::parse(res->body);
    EXPECT_EQ(body["error"], code) << res->body;
    EXPECT_TRUE(body["message"].is_string());
    EXPECT_TRUE(body["timestamp"].is_string());
    EXPECT_EQ(body["correlationId"], res->get_header_value("X-Correlation-ID"));
  }

  test::TempDir dir_;
  ServerConfig config_;
  TokenSigner signer_{std::string(32, 'k'), "stargate-test"};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<TokenBucketLimiter> limiter_;
  std::unique_ptr<AuditLog> audit_;
  Metrics metrics_;
  std::unique_ptr<HttpApi> api_;
  std::thread thread_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpApiTest, TokenEndpointFollowsRfc6749) {
  auto ok = token_request({{"grant_type", "client_credentials"},
                           {"client_id", "acme-all"},
                           {"client_secret", "secret-acme-all"}});
  ASSERT_EQ(ok->status, 200);
  EXPECT_EQ(ok->get_header_value("Cache-Control"), "no-store");
  const auto body = json::parse(ok->body);
  EXPECT_EQ(body["token_type"], "Bearer");
  EXPECT_EQ(body["expires_in"], 3600);
  EXPECT_EQ(body["scope"], "process:order process:shipping");

  auto wrong = token_request(
      {{"grant_type", "client_credentials"}, {"client_id", "acme-all"}, {"client_secret", "nope"}});
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(json::parse(wrong->body)["error"], "invalid_client");
  auto unknown = token_request(
      {{"grant_type", "client_credentials"}, {"client_id", "ghost"}, {"client_secret", "x"}});
  EXPECT_EQ(unknown->status, 401);
  EXPECT_EQ(unknown->body, wrong->body);  // no hint whether the client exists

  auto scope = token_request({{"grant_type", "client_credentials"},
                              {"client_id", "acme-order"},
                              {"client_secret", "secret-acme-order"},
                              {"scope", "process:shipping"}});
  EXPECT_EQ(scope->status, 400);
  EXPECT_EQ(json::parse(scope->body)["error"], "invalid_scope");
  auto grant = token_request({{"grant_type", "password"}});
  EXPECT_EQ(json::parse(grant->body)["error"], "unsupported_grant_type");
  auto json_body = client_->Post("/oauth/token", "{}", "application/json");
  EXPECT_EQ(json_body->status, 400);

  // HTTP Basic client authentication (RFC 6749 §2.3.1).
  httplib::Client basic("127.0.0.1", port_);
  basic.set_basic_auth("acme-order", "secret-acme-order");
  auto via_basic =
      basic.Post("/oauth/token", httplib::Params{{"grant_type", "client_credentials"}});
  EXPECT_EQ(via_basic->status, 200) << via_basic->body;
}

// Each check of a secret costs an Argon2id run: after 10 failures from one address within a
// minute, that address is refused without a check, even with the right secret, and told
// when to come back.
TEST_F(HttpApiTest, RepeatedFailedAuthenticationsAreRefusedWithoutACheck) {
  const std::string issued = token("acme-order");
  const httplib::Params wrong = {
      {"grant_type", "client_credentials"}, {"client_id", "acme-all"}, {"client_secret", "nope"}};
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(token_request(wrong)->status, 401);
  auto refused = token_request({{"grant_type", "client_credentials"},
                                {"client_id", "acme-all"},
                                {"client_secret", "secret-acme-all"}});
  ASSERT_EQ(refused->status, 429) << refused->body;
  EXPECT_EQ(json::parse(refused->body)["error"], "temporarily_unavailable");
  const int retry_after = std::stoi(refused->get_header_value("Retry-After"));
  EXPECT_GT(retry_after, 0);
  EXPECT_LE(retry_after, 60);
  // Tokens already issued keep working: only the token endpoint is refused.
  EXPECT_EQ(get(issued, "/api/stargate/processes")->status, 200);
  const auto metrics = client_->Get("/metrics")->body;
  EXPECT_NE(metrics.find("stargate_client_auth_refusals_total{outcome=\"failed\"} 10\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("stargate_client_auth_refusals_total{outcome=\"throttled\"} 1\n"),
            std::string::npos);
}

TEST(AuthThrottle, CountsFailuresPerAddressWithinAWindow) {
  AuthThrottle throttle(3, 60s, 2);
  const auto t0 = now_utc();
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(throttle.refused("192.0.2.1", t0));
    throttle.failed("192.0.2.1", t0);
  }
  EXPECT_EQ(throttle.refused("192.0.2.1", t0 + 20s), std::optional<Duration>(40s));
  EXPECT_FALSE(throttle.refused("192.0.2.2", t0 + 20s));  // another address is not affected
  EXPECT_FALSE(throttle.refused("192.0.2.1", t0 + 60s));  // the window has passed
  throttle.failed("192.0.2.1", t0 + 61s);                 // a new window, one failure
  EXPECT_FALSE(throttle.refused("192.0.2.1", t0 + 62s));
}

TEST(AuthThrottle, BoundsConcurrentChecks) {
  AuthThrottle throttle(10, 60s, 1);
  {
    AuthThrottle::Slot first(throttle, 0ms);
    EXPECT_TRUE(first.acquired);
    AuthThrottle::Slot second(throttle, 10ms);
    EXPECT_FALSE(second.acquired);
  }
  AuthThrottle::Slot again(throttle, 0ms);
  EXPECT_TRUE(again.acquired);
}

TEST_F(HttpApiTest, RefreshTokensRotateAndReuseRevokesTheFamily) {
  const httplib::Params credentials = {{"client_id", "acme-order"},
                                       {"client_secret", "secret-acme-order"}};
  auto with = [&](httplib::Params form) {
    form.insert(credentials.begin(), credentials.end());
    return token_request(form);
  };
  auto first = json::parse(with({{"grant_type", "client_credentials"}})->body);
  const std::string refresh1 = first["refresh_token"];
  auto second_res = with({{"grant_type", "refresh_token"}, {"refresh_token", refresh1}});
  ASSERT_EQ(second_res->status, 200) << second_res->body;
  auto second = json::parse(second_res->body);
  EXPECT_NE(second["refresh_token"], refresh1);
  EXPECT_EQ(second["scope"], "process:order");
  const std::string access2 = second["access_token"];
  EXPECT_EQ(submit(access2, order_body("k1"))->status, 202);
  // The rotated token presented again: refused, and the whole family with it.
  auto reuse = with({{"grant_type", "refresh_token"}, {"refresh_token", refresh1}});
  EXPECT_EQ(reuse->status, 400);
  EXPECT_EQ(json::parse(reuse->body)["error"], "invalid_grant");
  auto successor = with({{"grant_type", "refresh_token"},
                         {"refresh_token", second["refresh_token"].get<std::string>()}});
  EXPECT_EQ(json::parse(successor->body)["error"], "invalid_grant");
  expect_error(submit(access2, order_body("k2")), 401, "INVALID_TOKEN");
  // Another client cannot use this client's refresh token.
  auto other_family = json::parse(with({{"grant_type", "client_credentials"}})->body);
  auto stolen =
      token_request({{"grant_type", "refresh_token"},
                     {"client_id", "globex"},
                     {"client_secret", "secret-globex"},
                     {"refresh_token", other_family["refresh_token"].get<std::string>()}});
  EXPECT_EQ(json::parse(stolen->body)["error"], "invalid_grant");
  // And a refresh needs the client's credentials.
  auto anonymous = token_request({{"grant_type", "refresh_token"}, {"refresh_token", "x"}});
  EXPECT_EQ(anonymous->status, 401);
}

TEST_F(HttpApiTest, RevokedClientsTokensStopAtOnce) {
  const auto t = token("acme-order");
  EXPECT_EQ(submit(t, order_body("k1"))->status, 202);
  ASSERT_TRUE(store_->revoke_client("acme-order", now_utc()));
  expect_error(submit(t, order_body("k2")), 401, "INVALID_TOKEN");
  auto again = token_request({{"grant_type", "client_credentials"},
                              {"client_id", "acme-order"},
                              {"client_secret", "secret-acme-order"}});
  EXPECT_EQ(again->status, 401);
}

TEST_F(HttpApiTest, SubmitThenFollowToCompletion) {
  const auto t = token("acme-order");
  auto res = submit(t, order_body("k1"));
  ASSERT_EQ(res->status, 202) << res->body;
  const auto accepted = json::parse(res->body);
  const std::string id = accepted["processId"];
  EXPECT_EQ(accepted["status"], "accepted");
  EXPECT_EQ(accepted["clientProcessId"], "cp-k1");
  EXPECT_EQ(accepted["processType"], "order");
  EXPECT_EQ(res->get_header_value("Location"), "/api/stargate/processes/" + id);
  EXPECT_EQ(accepted["statusUrl"], res->get_header_value("Location"));
  EXPECT_TRUE(accepted["estimatedCompletionTime"].is_string());

  json status;
  ASSERT_TRUE(test::wait_until(
      [&] {
        status = json::parse(get(t, "/api/stargate/processes/" + id)->body);
        return status["status"] == "completed";
      },
      10s));
  EXPECT_EQ(status["progress"], 100);
  EXPECT_EQ(status["result"]["status"], "confirmed");
  EXPECT_TRUE(status["result"]["trackingNumber"].is_string());
  EXPECT_TRUE(status["completedAt"].is_string());
}

TEST_F(HttpApiTest, FailedProcessesCarryTheirError) {
  const auto t = token("acme-order");
  auto res = submit(t, order_body("k-low", "SKU-LOW"));
  const std::string id = json::parse(res->body)["processId"];
  json status;
  ASSERT_TRUE(test::wait_until(
      [&] {
        status = json::parse(get(t, "/api/stargate/processes/" + id)->body);
        return status["status"] == "failed";
      },
      10s));
  EXPECT_EQ(status["error"]["code"], "INVENTORY_INSUFFICIENT");
  EXPECT_EQ(status["error"]["details"]["available"], 1);
  EXPECT_EQ(status["retryable"], true);
  EXPECT_TRUE(status["failedAt"].is_string());
}

TEST_F(HttpApiTest, IdempotencyReplaysOrRefuses) {
  const auto t = token("acme-order");
  auto first = submit(t, order_body("k1"));
  auto again = submit(t, order_body("k1"));
  ASSERT_EQ(again->status, 202);
  EXPECT_EQ(json::parse(again->body)["processId"], json::parse(first->body)["processId"]);
  expect_error(submit(t, order_body("k1", "SKU-999")), 422, "IDEMPOTENCY_KEY_REUSED");
}

TEST_F(HttpApiTest, AuthenticationAndScopes) {
  expect_error(submit("", order_body("k1")), 401, "INVALID_TOKEN");
  expect_error(submit("not.a.token", order_body("k1")), 401, "INVALID_TOKEN");
  auto no_header = client_->Post("/api/stargate/processes", order_body("k1"), "application/json");
  expect_error(no_header, 401, "INVALID_TOKEN");
  EXPECT_NE(no_header->get_header_value("WWW-Authenticate").find("Bearer"), std::string::npos);
  const auto t = token("acme-order");
  auto body = json::parse(order_body("k2"));
  body["processType"] = "shipping";
  expect_error(submit(t, body.dump()), 403, "INSUFFICIENT_PERMISSIONS");
}

TEST_F(HttpApiTest, ThirtyTwoConcurrentSubmissionsWithOneKeyMakeOneProcess) {
  const auto t = token("acme-order");
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::set<std::string> ids;
  std::atomic<int> accepted{0};
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&] {
      httplib::Client own("127.0.0.1", port_);
      auto res = own.Post("/api/stargate/processes", {{"Authorization", "Bearer " + t}},
                          order_body("same-key"), "application/json");
      if (res && res->status == 202) {
        ++accepted;
        std::lock_guard lock(mutex);
        ids.insert(json::parse(res->body)["processId"].get<std::string>());
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(accepted, 32);
  EXPECT_EQ(ids.size(), 1u);
  ListQuery query;
  query.tenant = "acme";
  EXPECT_EQ(store_->list_processes(query)->size(), 1u);
}

TEST_F(HttpApiTest, ForgedAndExpiredTokensAreRefused) {
  const auto now = now_utc();
  TokenClaims claims{"acme-order", "acme", {"process:order"}, now, now + std::chrono::hours(1),
                     "j",          ""};
  TokenSigner wrong_key(std::string(32, 'z'), "stargate-test");
  TokenSigner wrong_issuer(std::string(32, 'k'), "someone-else");
  TokenClaims expired = claims;
  expired.issued_at = now - std::chrono::hours(2);
  expired.expires_at = now - std::chrono::hours(1);
  const std::string none_token =
      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
      "eyJpc3MiOiJzdGFyZ2F0ZS10ZXN0Iiwic3ViIjoiYWNtZS1vcmRlciIsInRlbmFudCI6ImFjbWUiLCJzY29wZSI6In"
      "Byb2Nlc3M6b3JkZXIiLCJleHAiOjk5OTk5OTk5OTl9.";
  std::string tampered = token("acme-order");
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  for (const auto& bad : {*wrong_key.issue(claims), *wrong_issuer.issue(claims),
                          *signer_.issue(expired), none_token, tampered}) {
    expect_error(submit(bad, order_body("k1")), 401, "INVALID_TOKEN");
  }
  EXPECT_EQ(submit(*signer_.issue(claims), order_body("k1"))->status, 202);  // the control
}

TEST_F(HttpApiTest, AnotherTenantsProcessIsNotFound) {
  auto res = submit(token("acme-order"), order_body("k1"));
  const std::string id = json::parse(res->body)["processId"];
  const auto other = token("globex");
  expect_error(get(other, "/api/stargate/processes/" + id), 404, "NOT_FOUND");
  expect_error(get(other, "/api/stargate/processes/PROC-20990101-00001"), 404, "NOT_FOUND");
  expect_error(get(other, "/api/stargate/processes/..%2F..%2Fetc"), 404, "NOT_FOUND");
  auto list = json::parse(get(other, "/api/stargate/processes")->body);
  EXPECT_TRUE(list["processes"].empty());
}

TEST_F(HttpApiTest, BadBodiesGetClearErrorsAndChangeNothing) {
  const auto t = token("acme-order");
  expect_error(submit(t, order_body("k1"), "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE");
  auto malformed = submit(t, "{\"clientProcessId\": \"a\",\n \"processType\": }");
  expect_error(malformed, 400, "INVALID_REQUEST");
  EXPECT_NE(json::parse(malformed->body)["message"].get<std::string>().find("line 2"),
            std::string::npos);
  auto missing = submit(t, R"({"processType":"order","data":{}})");
  expect_error(missing, 400, "INVALID_REQUEST");
  EXPECT_EQ(json::parse(missing->body)["message"], "Missing required field: clientProcessId");
  expect_error(submit(t, "[]"), 400, "INVALID_REQUEST");
  expect_error(submit(t, R"({"clientProcessId":"a","processType":"order","data":{})"), 400,
               "INVALID_REQUEST");  // truncated
  expect_error(submit(t, std::string(200, '[') + std::string(200, ']')), 400, "INVALID_REQUEST");
  expect_error(submit(t, std::string(300 * 1024, ' ')), 413, "PAYLOAD_TOO_LARGE");
  auto unknown = json::parse(order_body("k9"));
  unknown["processType"] = "teleport";
  expect_error(submit(t, unknown.dump()), 403, "INSUFFICIENT_PERMISSIONS");
  ListQuery query;
  query.tenant = "acme";
  EXPECT_TRUE(store_->list_processes(query)->empty());
  // And the server still serves.
  EXPECT_EQ(submit(t, order_body("k1"))->status, 202);
}

TEST_F(HttpApiTest, CorrelationIdsAndUnknownRoutes) {
  auto res = client_->Get("/nowhere", {{"X-Correlation-ID", "trace-42"}});
  expect_error(res, 404, "NOT_FOUND");
  EXPECT_EQ(res->get_header_value("X-Correlation-ID"), "trace-42");
  auto bad_id = client_->Get("/health/live", {{"X-Correlation-ID", "bad id with spaces"}});
  EXPECT_EQ(bad_id->status, 200);
  EXPECT_NE(bad_id->get_header_value("X-Correlation-ID"), "bad id with spaces");
  EXPECT_FALSE(bad_id->get_header_value("X-Correlation-ID").empty());
}

TEST_F(HttpApiTest, ListValidatesItsParameters) {
  const auto t = token("acme-order");
  ASSERT_EQ(submit(t, order_body("k1"))->status, 202);
  ASSERT_EQ(submit(t, order_body("k2"))->status, 202);
  auto page = json::parse(get(t, "/api/stargate/processes?limit=1")->body);
  ASSERT_EQ(page["processes"].size(), 1u);
  EXPECT_EQ(page["processes"][0]["clientProcessId"], "cp-k2");
  auto next = json::parse(
      get(t, "/api/stargate/processes?limit=1&cursor=" + page["nextCursor"].get<std::string>())
          ->body);
  EXPECT_EQ(next["processes"][0]["clientProcessId"], "cp-k1");
  expect_error(get(t, "/api/stargate/processes?limit=0"), 400, "INVALID_REQUEST");
  expect_error(get(t, "/api/stargate/processes?limit=abc"), 400, "INVALID_REQUEST");
  expect_error(get(t, "/api/stargate/processes?status=done"), 400, "INVALID_REQUEST");
  expect_error(get(t, "/api/stargate/processes?cursor=x"), 400, "INVALID_REQUEST");
}

TEST_F(HttpApiTest, RateLimitsPerTenantWithHeaders) {
  const auto t = token("globex");  // 60 a minute, bursts of 3
  for (int i = 0; i < 3; ++i) {
    auto res = get(t, "/api/stargate/processes");
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("X-RateLimit-Limit"), "60");
    EXPECT_EQ(res->get_header_value("X-RateLimit-Remaining"), std::to_string(2 - i));
    EXPECT_FALSE(res->get_header_value("X-RateLimit-Reset").empty());
  }
  auto refused = get(t, "/api/stargate/processes");
  expect_error(refused, 429, "RATE_LIMIT_EXCEEDED");
  const auto body = json::parse(refused->body);
  EXPECT_EQ(body["retryAfter"], 1);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(refused->get_header_value("X-RateLimit-Remaining"), "0");
  EXPECT_EQ(body["message"], "Request rate limit exceeded (60 req/min)");
  // Another tenant is not affected.
  EXPECT_EQ(get(token("acme-order"), "/api/stargate/processes")->status, 200);
}

TEST_F(HttpApiTest, RetryStartsANewAttemptOfARetryableFailure) {
  const auto t = token("acme-order");
  const std::string failing =
      json::parse(submit(t, order_body("k-low", "SKU-LOW"))->body)["processId"];
  ASSERT_TRUE(test::wait_until(
      [&] {
        return json::parse(get(t, "/api/stargate/processes/" + failing)->body)["status"] ==
               "failed";
      },
      10s));
  const auto retried_at = now_utc();
  auto retried = client_->Post("/api/stargate/processes/" + failing + "/retry",
                               {{"Authorization", "Bearer " + t}}, "", "application/json");
  ASSERT_EQ(retried->status, 202) << retried->body;
  EXPECT_EQ(json::parse(retried->body)["processId"], failing);
  // The new attempt has its own estimate: the type's expected duration (10m) from now.
  auto estimate =
      parse_timestamp(json::parse(retried->body)["estimatedCompletionTime"].get<std::string>());
  ASSERT_TRUE(estimate);
  EXPECT_GE(*estimate, retried_at + std::chrono::minutes(10) - std::chrono::seconds(1));
  // It runs again (and fails again: the stock is still short).
  ASSERT_TRUE(test::wait_until(
      [&] {
        return json::parse(get(t, "/api/stargate/processes/" + failing)->body)["status"] ==
               "failed";
      },
      10s));

  const std::string fine = json::parse(submit(t, order_body("k-ok"))->body)["processId"];
  auto running = client_->Post("/api/stargate/processes/" + fine + "/retry",
                               {{"Authorization", "Bearer " + t}}, "", "application/json");
  expect_error(running, 409, "NOT_RETRYABLE");
  auto missing = client_->Post("/api/stargate/processes/PROC-20990101-00001/retry",
                               {{"Authorization", "Bearer " + t}}, "", "application/json");
  expect_error(missing, 404, "NOT_FOUND");
  auto foreign =
      client_->Post("/api/stargate/processes/" + failing + "/retry",
                    {{"Authorization", "Bearer " + token("globex")}}, "", "application/json");
  expect_error(foreign, 404, "NOT_FOUND");
}

TEST_F(HttpApiTest, RunningProcessesSuggestWhenToPollAgain) {
  const auto t = token("acme-order");
  const std::string id = json::parse(submit(t, order_body("k1"))->body)["processId"];
  auto first = get(t, "/api/stargate/processes/" + id);
  if (json::parse(first->body)["status"] != "completed") {
    EXPECT_EQ(first->get_header_value("Retry-After"), "30");
  }
  ASSERT_TRUE(test::wait_until(
      [&] {
        return json::parse(get(t, "/api/stargate/processes/" + id)->body)["status"] == "completed";
      },
      10s));
  EXPECT_FALSE(get(t, "/api/stargate/processes/" + id)->has_header("Retry-After"));
}

TEST_F(HttpApiTest, OverlongStringsAreRefused) {
  auto body = json::parse(order_body("k1"));
  body["data"]["items"][0]["sku"] = std::string(65 * 1024, 'x');
  auto res = submit(token("acme-order"), body.dump());
  expect_error(res, 400, "INVALID_REQUEST");
  EXPECT_NE(json::parse(res->body)["message"].get<std::string>().find("/data/items/0/sku"),
            std::string::npos);
}

TEST_F(HttpApiTest, RequestsAndStateChangesAreAudited) {
  const auto t = token("acme-order");
  auto res = client_->Post("/api/stargate/processes",
                           {{"Authorization", "Bearer " + t}, {"X-Correlation-ID", "audit-me"}},
                           order_body("k1"), "application/json");
  const std::string id = json::parse(res->body)["processId"];
  ASSERT_TRUE(test::wait_until(
      [&] {
        return json::parse(get(t, "/api/stargate/processes/" + id)->body)["status"] == "completed";
      },
      10s));
  // A request is audited just after its answer is sent.
  std::vector<json> records;
  test::wait_until(
      [&] {
        audit_->flush();
        records.clear();
        EXPECT_TRUE(store_->export_audit(
            TimePoint{}, [&](const AuditRecord& r) { records.push_back(json::parse(r.record)); }));
        return std::any_of(records.begin(), records.end(), [](const json& r) {
          return r.value("correlationId", "") == "audit-me";
        });
      },
      5s);
  bool saw_request = false;
  std::vector<std::string> states;
  for (const auto& r : records) {
    if (r["kind"] == "request" && r["correlationId"] == "audit-me") {
      saw_request = true;
      EXPECT_EQ(r["client"], "acme-order");
      EXPECT_EQ(r["tenant"], "acme");
      EXPECT_EQ(r["status"], 202);
      EXPECT_EQ(r["route"], "/api/stargate/processes");
      EXPECT_TRUE(r["latencyMs"].is_number());
    }
    if (r["kind"] == "state" && r["processId"] == id) states.push_back(r["to"]);
    // Never a secret, token or Authorization header.
    EXPECT_EQ(r.dump().find(t), std::string::npos);
    EXPECT_EQ(r.dump().find("secret-acme"), std::string::npos);
    EXPECT_EQ(r.dump().find("Bearer"), std::string::npos);
  }
  EXPECT_TRUE(saw_request);
  EXPECT_EQ(states, (std::vector<std::string>{"accepted", "processing", "completed"}));
  EXPECT_TRUE(store_->verify_audit()->intact);
}

TEST_F(HttpApiTest, MetricsInPrometheusFormat) {
  const auto t = token("acme-order");
  const std::string id = json::parse(submit(t, order_body("k1"))->body)["processId"];
  ASSERT_TRUE(test::wait_until(
      [&] {
        return json::parse(get(t, "/api/stargate/processes/" + id)->body)["status"] == "completed";
      },
      10s));
  get(t, "/api/stargate/processes/PROC-20990101-00009");
  client_->Get("/no/such/route/" + std::string(50, 'x'));
  // Requests are counted just after their answer is sent, so give the last ones a moment.
  const std::vector<std::string> expected = {
      "# TYPE stargate_http_requests_total counter",
      "stargate_http_requests_total{method=\"POST\",route=\"/api/stargate/"
      "processes\",status=\"202\"} 1",
      "stargate_http_requests_total{method=\"GET\",route=\"/api/stargate/processes/"
      ":id\",status=\"404\"} 1",
      "route=\"other\"",
      "stargate_http_request_duration_seconds_bucket{route=\"/oauth/token\",le=\"+Inf\"} 1",
      "stargate_processes{state=\"completed\"} 1",
      "stargate_queue_depth 0",
      "stargate_handler_runs_total{process_type=\"order\",outcome=\"completed\"} 1",
      "stargate_handler_duration_seconds_count{process_type=\"order\"} 1",
      "stargate_engine_up 1"};
  std::string text;
  test::wait_until(
      [&] {
        auto res = client_->Get("/metrics");
        EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
        text = res->body;
        return std::all_of(expected.begin(), expected.end(), [&](const std::string& line) {
          return text.find(line) != std::string::npos;
        });
      },
      5s);
  for (const auto& line : expected) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  EXPECT_EQ(text.find(std::string(50, 'x')), std::string::npos);  // no label per random URL
}

TEST(Metrics, RouteLabels) {
  EXPECT_EQ(route_label("/api/stargate/processes"), "/api/stargate/processes");
  EXPECT_EQ(route_label("/api/stargate/processes/PROC-20260114-00001"),
            "/api/stargate/processes/:id");
  EXPECT_EQ(route_label("/api/stargate/processes/PROC-20260114-00001/retry"),
            "/api/stargate/processes/:id/retry");
  EXPECT_EQ(route_label("/api/stargate/processes/evil\"label"), "other");
  EXPECT_EQ(route_label("/wp-admin"), "other");
}

TEST_F(HttpApiTest, HealthProbes) {
  EXPECT_EQ(client_->Get("/health/live")->status, 200);
  EXPECT_EQ(client_->Get("/health/ready")->status, 200);
  engine_->stop();
  auto ready = client_->Get("/health/ready");
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(json::parse(ready->body)["failing"], json::array({"engine"}));
}

}  // namespace
}  // namespace stargate::server
