// Tests of server/gateway/http_api.cpp's process API, health and metrics: real HTTP on loopback
// against the gateway running in this process on a real SQLite store. The token endpoint and
// token checks are in http_token_test.cpp.
#include "server/gateway/http_api.hpp"

#include <gtest/gtest.h>

#include <httplib.h>
#include "server/store/audit_chain.hpp"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "shared/sqlite.hpp"
#include "tests/server/http_api_fixture.hpp"

namespace stargate::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using fixtures::HttpApiTest;

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
  ASSERT_TRUE(wait_for_status(t, failing, "failed"));
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
  ASSERT_TRUE(wait_for_status(t, failing, "failed"));

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

// A retry the store cannot read (the row's data is no longer JSON) answers 503 and changes
// nothing, whatever the caller's scope. (The route used to skip its scope check when its
// first read failed; a real store cannot be made to fail that read alone on demand, so this
// checks the outcome, and the route now stops at the first failed read.)
TEST_F(HttpApiTest, ARetryTheStoreCannotReadChangesNothing) {
  const auto t = token("acme-order");
  const std::string failing =
      json::parse(submit(t, order_body("k-low", "SKU-LOW"))->body)["processId"];
  ASSERT_TRUE(wait_for_status(t, failing, "failed"));
  db::Database side(dir_.file("store.db"));
  side.prepare("UPDATE processes SET data = 'not json' WHERE process_id = ?")
      .bind(1, failing)
      .run();
  const auto shipping_only = token("acme-all", "process:shipping");
  auto refused =
      client_->Post("/api/stargate/processes/" + failing + "/retry",
                    {{"Authorization", "Bearer " + shipping_only}}, "", "application/json");
  expect_error(refused, 503, "SERVICE_UNAVAILABLE");
  auto row = side.prepare("SELECT status, attempt, queued FROM processes WHERE process_id = ?");
  row.bind(1, failing);
  ASSERT_TRUE(row.step());
  EXPECT_EQ(row.text(0), "failed");
  EXPECT_EQ(row.integer(1), 1);
  EXPECT_EQ(row.integer(2), 0);
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

// Every status answer carries an ETag; sent back in If-None-Match it gets 304 with no body
// while the process is unchanged, and 200 with a new tag once it changed.
TEST_F(HttpApiTest, ConditionalStatusAnswers304WhileTheProcessIsUnchanged) {
  const auto t = token("acme-order");
  const std::string id = json::parse(submit(t, order_body("k1"))->body)["processId"];
  const std::string path = "/api/stargate/processes/" + id;
  ASSERT_TRUE(wait_for_status(t, id, "completed"));
  auto first = get(t, path);
  ASSERT_EQ(first->status, 200);
  const std::string tag = first->get_header_value("ETag");
  ASSERT_EQ(tag.size(), 34u) << tag;  // 32 hex digits in quotes
  EXPECT_EQ(tag.front(), '"');
  const auto conditional = [&](const std::string& value) {
    return client_->Get(path, {{"Authorization", "Bearer " + t}, {"If-None-Match", value}});
  };
  auto same = conditional(tag);
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 304);
  EXPECT_TRUE(same->body.empty());
  EXPECT_EQ(same->get_header_value("ETag"), tag);
  EXPECT_TRUE(same->has_header("X-RateLimit-Remaining"));
  EXPECT_EQ(conditional("W/" + tag + ", \"other\"")->status, 304);
  EXPECT_EQ(conditional("*")->status, 304);
  auto other = conditional("\"0123\"");
  EXPECT_EQ(other->status, 200);
  EXPECT_EQ(other->body, first->body);
  EXPECT_EQ(conditional("not-a-tag, \"unterminated")->status, 200);
  // Another tenant's process stays unknown, whatever tag is sent.
  auto foreign =
      client_->Get(path, {{"Authorization", "Bearer " + token("globex")}, {"If-None-Match", tag}});
  EXPECT_EQ(foreign->status, 404);

  // A retried process changes: the old tag no longer matches.
  const std::string failing =
      json::parse(submit(t, order_body("k2", "SKU-LOW"))->body)["processId"];
  ASSERT_TRUE(wait_for_status(t, failing, "failed"));
  const std::string failed_tag =
      get(t, "/api/stargate/processes/" + failing)->get_header_value("ETag");
  ASSERT_EQ(client_
                ->Post("/api/stargate/processes/" + failing + "/retry",
                       {{"Authorization", "Bearer " + t}}, "", "application/json")
                ->status,
            202);
  auto changed = client_->Get("/api/stargate/processes/" + failing,
                              {{"Authorization", "Bearer " + t}, {"If-None-Match", failed_tag}});
  EXPECT_EQ(changed->status, 200);
  EXPECT_NE(changed->get_header_value("ETag"), failed_tag);
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
        EXPECT_TRUE(store_->scan_audit(
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
  EXPECT_TRUE(verify_audit(*store_)->intact);
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
