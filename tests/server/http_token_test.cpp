// Tests of the token endpoint and of token checks (server/gateway/http_token.cpp,
// server/gateway/auth.cpp, server/gateway/auth_throttle.cpp): real HTTP on loopback against the
// gateway in this process.
#include <gtest/gtest.h>
#include <httplib.h>

#include "server/gateway/auth_throttle.hpp"
#include "tests/server/http_api_fixture.hpp"

namespace stargate::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using fixtures::HttpApiTest;

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
    AuthThrottle::Attempt attempt(throttle, "192.0.2.1", t0);
    EXPECT_FALSE(attempt.refused());
    attempt.failed(t0);
  }
  EXPECT_EQ(AuthThrottle::Attempt(throttle, "192.0.2.1", t0 + 20s).refused(),
            std::optional<Duration>(40s));
  // Another address is not affected, and successes do not count.
  for (int i = 0; i < 5; ++i)
    EXPECT_FALSE(AuthThrottle::Attempt(throttle, "192.0.2.2", t0 + 20s).refused());
  EXPECT_FALSE(AuthThrottle::Attempt(throttle, "192.0.2.1", t0 + 60s).refused());  // passed
  {
    AuthThrottle::Attempt attempt(throttle, "192.0.2.1", t0 + 61s);  // a new window
    attempt.failed(t0 + 61s);
  }
  EXPECT_FALSE(AuthThrottle::Attempt(throttle, "192.0.2.1", t0 + 62s).refused());
}

// Unfixed, 64 requests sent at once all passed the check before the first failure was
// counted: 29 checks ran against a limit of 10.
TEST(AuthThrottle, ChecksInFlightCountAgainstTheLimit) {
  AuthThrottle throttle(3, 60s, 2);
  const auto t0 = now_utc();
  std::vector<std::unique_ptr<AuthThrottle::Attempt>> running;
  for (int i = 0; i < 3; ++i) {
    running.push_back(std::make_unique<AuthThrottle::Attempt>(throttle, "192.0.2.1", t0));
    EXPECT_FALSE(running.back()->refused());
  }
  // A fourth must wait a moment: the three in flight could all fail.
  EXPECT_EQ(AuthThrottle::Attempt(throttle, "192.0.2.1", t0).refused(),
            std::optional<Duration>(1s));
  for (auto& attempt : running)
    attempt->failed(t0);
  running.clear();
  EXPECT_EQ(AuthThrottle::Attempt(throttle, "192.0.2.1", t0 + 1s).refused(),
            std::optional<Duration>(59s));
  // One that succeeds gives its try back.
  AuthThrottle other(1, 60s, 2);
  { AuthThrottle::Attempt ok(other, "192.0.2.3", t0); }
  EXPECT_FALSE(AuthThrottle::Attempt(other, "192.0.2.3", t0).refused());
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

// A rotation's grace: the new secret works, and so does the one it replaced until the grace
// ends; a token got with the old one is audited as such.
TEST_F(HttpApiTest, ARotatedClientIsAcceptedWithEitherSecretDuringTheGrace) {
  const auto ask = [&](const std::string& secret, const std::string& correlation) {
    return client_->Post("/oauth/token", {{"X-Correlation-ID", correlation}},
                         httplib::Params{{"grant_type", "client_credentials"},
                                         {"client_id", "acme-order"},
                                         {"client_secret", secret}});
  };
  ASSERT_TRUE(
      store_->rotate_client_secret("acme-order", *hash_secret("the-new-secret"), now_utc() + 1h));
  EXPECT_EQ(ask("the-new-secret", "rot-new")->status, 200);
  auto old = ask("secret-acme-order", "rot-old");
  ASSERT_EQ(old->status, 200);
  // Its token is as good as any.
  EXPECT_EQ(submit(json::parse(old->body)["access_token"], order_body("k1"))->status, 202);
  EXPECT_EQ(ask("neither", "rot-wrong")->status, 401);

  std::map<std::string, json> audited;
  test::wait_until(
      [&] {
        audit_->flush();
        audited.clear();
        EXPECT_TRUE(store_->scan_audit(TimePoint{}, [&](const AuditRecord& r) {
          auto record = json::parse(r.record);
          audited[record.value("correlationId", "")] = record;
        }));
        return audited.count("rot-wrong") == 1;
      },
      5s);
  EXPECT_EQ(audited["rot-old"].value("secret", ""), "previous");
  EXPECT_FALSE(audited["rot-new"].contains("secret"));
  EXPECT_EQ(audited["rot-old"].dump().find("secret-acme"), std::string::npos);

  // Once the grace is over (a rotation whose grace has ended), only the new secret works.
  ASSERT_TRUE(store_->rotate_client_secret("acme-order", *hash_secret("the-newest-secret"),
                                           now_utc() - 1s));
  EXPECT_EQ(ask("the-new-secret", "late-old")->status, 401);
  EXPECT_EQ(ask("the-newest-secret", "late-new")->status, 200);
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

}  // namespace
}  // namespace stargate::server
