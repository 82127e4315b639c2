// Test support for the gateway's tests: the HTTP API running in this process on a real
// SQLite store and a real engine, on a free loopback port, with cpp-httplib's client and
// three clients (acme-order, acme-all, globex) whose secrets are "secret-" + their id.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <thread>

#include "server/common/metrics.hpp"
#include "server/engine/engine.hpp"
#include "server/engine/handlers/builtin_handlers.hpp"
#include "server/gateway/auth.hpp"
#include "server/gateway/http_api.hpp"
#include "server/gateway/rate_limiter.hpp"
#include "server/store/audit_log.hpp"
#include "server/store/sqlite/sqlite_store.hpp"
#include "tests/support/process.hpp"

namespace stargate::server::fixtures {

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
    api_ = std::make_unique<HttpApi>(config_, *store_, engine_.get(), signer_, *limiter_, *audit_,
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
    return nlohmann::json::parse(res->body)["access_token"];
  }

  httplib::Result submit(const std::string& token, const std::string& body,
                         const std::string& type = "application/json") {
    return client_->Post("/api/stargate/processes", {{"Authorization", "Bearer " + token}}, body,
                         type);
  }

  httplib::Result get(const std::string& token, const std::string& path) {
    return client_->Get(path, {{"Authorization", "Bearer " + token}});
  }

  // Waits (up to 10 s) until the process answers with `status`.
  bool wait_for_status(const std::string& token, const std::string& id, const std::string& status) {
    return test::wait_until(
        [&] {
          auto res = get(token, "/api/stargate/processes/" + id);
          return res && nlohmann::json::parse(res->body).value("status", "") == status;
        },
        10s);
  }

  static std::string order_body(const std::string& key, const std::string& sku = "SKU-001") {
    return nlohmann::json{
        {"clientProcessId", "cp-" + key},
        {"processType", "order"},
        {"data", {{"orderId", "ORD-1"}, {"items", {{{"sku", sku}, {"quantity", 2}}}}}},
        {"idempotencyKey", key}}
        .dump();
  }

  static void expect_error(const httplib::Result& res, int status, const std::string& code) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << res->body;
    const auto body = nlohmann::json::parse(res->body);
    EXPECT_EQ(body["error"], code) << res->body;
    EXPECT_TRUE(body["message"].is_string());
    EXPECT_TRUE(body["timestamp"].is_string());
    EXPECT_EQ(body["correlationId"], res->get_header_value("X-Correlation-ID"));
  }

  ::stargate::test::TempDir dir_;
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

}  // namespace stargate::server::fixtures
