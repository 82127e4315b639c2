// Tests of server/store/redis/: the client and the shared rate limiter, against a real
// redis-server started by the test.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "server/gateway/auth_throttle.hpp"
#include "server/store/redis/redis_auth_failures.hpp"
#include "server/store/redis/redis_client.hpp"
#include "server/store/redis/redis_rate_limiter.hpp"
#include "tests/support/engines.hpp"

namespace stargate::server {
namespace {

redis::Endpoint endpoint_of(const test::RedisServer& server) {
  auto endpoint = redis::parse_redis_url(server.url());
  EXPECT_TRUE(endpoint) << endpoint.error();
  return endpoint ? *endpoint : redis::Endpoint{};
}

TEST(RedisUrl, ReadsHostPortAndDatabase) {
  auto plain = redis::parse_redis_url("redis://cache");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->host, "cache");
  EXPECT_EQ(plain->port, 6379);
  auto full = redis::parse_redis_url("redis://[::1]:6380/3");
  ASSERT_TRUE(full) << full.error();
  EXPECT_EQ(full->host, "::1");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->database, 3);
  const std::vector<std::string> bad_urls = {
      "redis://",   "redis://:pw@h", "redis://h:0",   "redis://h:x",
      "rediss://h", "redis://[::1",  "redis://h/100", "redis://" + std::string(300, 'a')};
  for (const auto& bad : bad_urls) {
    EXPECT_FALSE(redis::parse_redis_url(bad)) << bad;
  }
}

TEST(RedisClient, RunsCommandsAndReconnectsAfterARestart) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  redis::Client client(endpoint_of(server));
  ASSERT_TRUE(client.command({"SET", "k", std::string("a\0b", 3)}));
  auto value = client.command({"GET", "k"});
  ASSERT_TRUE(value) << value.error();
  EXPECT_EQ(value->text, std::string("a\0b", 3));
  EXPECT_FALSE(client.command({"NO-SUCH-COMMAND"}));

  server.stop(true);
  auto down = client.command({"PING"});
  ASSERT_FALSE(down);
  EXPECT_NE(down.error().find("redis: "), std::string::npos);
  ASSERT_TRUE(server.start()) << server.error();
  EXPECT_TRUE(
      test::wait_until([&] { return bool(client.command({"PING"})); }, std::chrono::seconds(10)));
}

// A program with more threads than 64 that use Redis at once keeps a connection for each
// (backends size the client to its HTTP threads plus engine workers): before, a busy thread
// past the 64th connected and disconnected on every command.
TEST(RedisClient, KeepsAnIdleConnectionForEachThreadThatUsedOneAtOnce) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  redis::Client client(endpoint_of(server), std::chrono::seconds(5), 100);
  std::vector<std::thread> threads;
  for (int t = 0; t < 100; ++t) {
    // Each holds its connection for a second, so that all of them are out at once.
    threads.emplace_back([&] { EXPECT_TRUE(client.command({"BLPOP", "nothing", "1"})); });
  }
  for (auto& thread : threads)
    thread.join();
  redis::Client observer(endpoint_of(server));
  auto info = observer.command({"INFO", "clients"});
  ASSERT_TRUE(info) << info.error();
  const auto at = info->text.find("connected_clients:");
  ASSERT_NE(at, std::string::npos) << info->text;
  const int connected = std::stoi(info->text.substr(at + 18));
  EXPECT_GT(connected - 1, 64) << "idle connections were closed: " << info->text;
  EXPECT_LE(connected - 1, 100);
}

// Scripts of many threads at once are pipelined (one connection writes them together):
// each caller gets the answer to its own script, binary-safe, a script's error fails that
// call only, and Redis sees far fewer connections than there were threads.
TEST(RedisClient, PipelinedScriptsEachGetTheirOwnAnswer) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  redis::Client client(endpoint_of(server));
  const std::string echo = "return redis.call('INCRBY', KEYS[1], ARGV[1]) .. '/' .. ARGV[2]";
  const std::string broken = "return redis.call('NO-SUCH-COMMAND')";
  constexpr int kThreads = 32;
  constexpr int kEach = 200;
  std::atomic<int> wrong{0};
  std::atomic<int> errors_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "counter:" + std::to_string(t);
      for (int n = 1; n <= kEach; ++n) {
        const std::string tag =
            std::string("t\0\n", 3) + std::to_string(t) + ":" + std::to_string(n);
        auto got = client.eval(echo, {key}, {"1", tag});
        if (!got || got->text != std::to_string(n) + "/" + tag) ++wrong;
        if (n % 50 == 0) {
          auto failed = client.eval(broken, {}, {});
          if (!failed && failed.error().find("redis: ") == 0) ++errors_seen;
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(errors_seen, kThreads * kEach / 50);
  auto info = client.command({"INFO", "clients"});
  ASSERT_TRUE(info) << info.error();
  const auto at = info->text.find("connected_clients:");
  ASSERT_NE(at, std::string::npos) << info->text;
  EXPECT_LT(std::stoi(info->text.substr(at + 18)), kThreads) << info->text;
}

// Redis restarted under a client with many connections kept (pooled and pipelined): the
// first command after it may fail, the ones after do not (every connection to the server
// that is gone was dropped when one was found broken).
TEST(RedisClient, ARestartCostsOneFailureNotOnePerConnection) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  redis::Client client(endpoint_of(server), std::chrono::seconds(5));
  const std::string script = "return ARGV[1]";
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      EXPECT_TRUE(client.command({"BLPOP", "nothing", "1"}));  // 8 connections at once
      EXPECT_TRUE(client.eval(script, {}, {"x"}));
    });
  }
  for (auto& thread : threads)
    thread.join();
  server.stop(true);
  ASSERT_TRUE(server.start()) << server.error();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the reconnect pause
  int failures = 0;
  for (int n = 0; n < 20; ++n) {
    const bool ok =
        n % 2 == 0 ? bool(client.command({"PING"})) : bool(client.eval(script, {}, {"y"}));
    if (!ok) ++failures;
  }
  EXPECT_LE(failures, 1);
}

// A Redis that requires a password: the right one works (the URL never holds it; it comes
// from a file), a wrong or missing one fails with a clear error and no command runs.
TEST(RedisClient, AuthenticatesWithThePasswordAndRefusesWithout) {
  test::TempDir dir;
  test::RedisServer server(dir.path(), false, "s3cret pass");
  ASSERT_TRUE(server.ok()) << server.error();
  auto endpoint = endpoint_of(server);
  endpoint.password = "s3cret pass";
  redis::Client right(endpoint);
  auto pong = right.command({"PING"});
  ASSERT_TRUE(pong) << pong.error();
  EXPECT_EQ(pong->text, "PONG");

  endpoint.password = "wrong";
  redis::Client wrong(endpoint);
  auto refused = wrong.command({"SET", "k", "v"});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("authentication failed"), std::string::npos) << refused.error();

  endpoint.password.clear();
  redis::Client none(endpoint);
  auto anonymous = none.command({"SET", "k", "v"});
  ASSERT_FALSE(anonymous);
  EXPECT_NE(anonymous.error().find("NOAUTH"), std::string::npos) << anonymous.error();
  EXPECT_EQ(right.command({"EXISTS", "k"})->integer, 0);
}

// Two gateways: an address that failed max times through one is refused by the other for
// the rest of its window; without Redis each gateway counts on its own again.
TEST(RedisAuthFailures, AnAddressGetsItsTriesInAllNotPerGateway) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  auto redis = std::make_shared<redis::Client>(endpoint_of(server));
  AuthThrottle one(3, std::chrono::minutes(5), 4);
  AuthThrottle other(3, std::chrono::minutes(5), 4);
  one.share(std::make_shared<RedisAuthFailures>(redis));
  other.share(std::make_shared<RedisAuthFailures>(redis));
  for (int i = 0; i < 2; ++i) {
    AuthThrottle::Attempt attempt(one, "198.51.100.7", now_utc());
    ASSERT_FALSE(attempt.refused());
    attempt.failed(now_utc());
  }
  {
    AuthThrottle::Attempt third(other, "198.51.100.7", now_utc());
    ASSERT_FALSE(third.refused());  // two failures so far, on the first gateway
    third.failed(now_utc());
  }
  AuthThrottle::Attempt refused(one, "198.51.100.7", now_utc());
  ASSERT_TRUE(refused.refused());
  EXPECT_GT(*refused.refused(), std::chrono::minutes(4));
  AuthThrottle::Attempt elsewhere(other, "198.51.100.7", now_utc());
  EXPECT_TRUE(elsewhere.refused());
  AuthThrottle::Attempt someone_else(other, "198.51.100.8", now_utc());
  EXPECT_FALSE(someone_else.refused());
  auto ttl = redis->command({"PTTL", "stargate:authfail:198.51.100.7"});
  ASSERT_TRUE(ttl) << ttl.error();
  EXPECT_GT(ttl->integer, 0);  // the key goes with its window

  server.stop(true);
  AuthThrottle::Attempt without_redis(other, "198.51.100.7", now_utc());
  EXPECT_FALSE(without_redis.refused());  // the second gateway saw one failure itself
}

// Two gateways, one tenant: one bucket. Burst 5 and 60 a minute: of 20 requests made at
// once through both, 5 (and at most one more refilled meanwhile) pass.
TEST(RedisRateLimiter, OneTenantThroughTwoGatewaysGetsOneLimit) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  redis::Client first_connection(endpoint_of(server));
  redis::Client second_connection(endpoint_of(server));
  const RateLimit limit{60, 5};
  RedisRateLimiter first(first_connection, limit, {});
  RedisRateLimiter second(second_connection, limit, {});
  int allowed = 0;
  for (int i = 0; i < 20; ++i) {
    auto decision = (i % 2 == 0 ? first : second).take("acme", now_utc());
    if (decision.allowed) ++allowed;
    if (!decision.allowed) {
      EXPECT_GE(decision.retry_after_seconds, 1);
    }
    EXPECT_EQ(decision.limit, 60);
  }
  EXPECT_GE(allowed, 5);
  EXPECT_LE(allowed, 6);
  EXPECT_TRUE(first.shared());
  // Another tenant has a bucket of its own.
  EXPECT_TRUE(second.take("globex", now_utc()).allowed);
}

// The scripts Redis has run: EVALSHA and EVAL calls so far.
long long scripts_run(redis::Client& redis) {
  auto info = redis.command({"INFO", "commandstats"});
  EXPECT_TRUE(info) << (info ? "" : info.error());
  if (!info) return -1;
  long long calls = 0;
  for (const char* name : {"cmdstat_evalsha:calls=", "cmdstat_eval:calls="}) {
    const auto at = info->text.find(name);
    if (at != std::string::npos) calls += std::stoll(info->text.substr(at + std::strlen(name)));
  }
  return calls;
}

// A busy tenant takes its tokens from the shared bucket in leases that grow, so that most of
// its requests cost no round trip; a tenant allowed under 10 a second takes one at a time.
TEST(RedisRateLimiter, ABusyTenantsTokensAreLeasedInGrowingBatches) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  redis::Client connection(endpoint_of(server));
  EXPECT_EQ(RedisRateLimiter::largest_lease(RateLimit{600, 100}), 1);
  EXPECT_EQ(RedisRateLimiter::largest_lease(RateLimit{60000, 100}), 6);       // burst / 16
  EXPECT_EQ(RedisRateLimiter::largest_lease(RateLimit{60000, 100000}), 100);  // rate * 100 ms
  RedisRateLimiter limiter(connection, RateLimit{6'000'000, 1'000'000}, {});
  const long long before = scripts_run(connection);
  for (int i = 0; i < 1000; ++i) {
    const auto decision = limiter.take("acme", now_utc());
    ASSERT_TRUE(decision.allowed) << i;
    EXPECT_GT(decision.remaining, 990'000);
  }
  const long long calls = scripts_run(connection) - before;
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 100) << "one round trip per request would be 1000";
  EXPECT_TRUE(limiter.shared());
}

// Leases never let a tenant past its one limit: of 2,000 requests through two gateways at
// once, no more pass than the burst and what refilled meanwhile, and no fewer than the burst
// less what each gateway may still hold unspent.
TEST(RedisRateLimiter, LeasedTokensKeepOneLimitAcrossGateways) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  redis::Client first_connection(endpoint_of(server));
  redis::Client second_connection(endpoint_of(server));
  const RateLimit limit{60'000, 400};  // 1,000 a second; leases of up to 25
  ASSERT_EQ(RedisRateLimiter::largest_lease(limit), 25);
  RedisRateLimiter first(first_connection, limit, {});
  RedisRateLimiter second(second_connection, limit, {});
  const auto start = std::chrono::steady_clock::now();
  int allowed = 0;
  for (int i = 0; i < 2000; ++i) {
    if ((i % 2 == 0 ? first : second).take("acme", now_utc()).allowed) ++allowed;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(allowed, 400 + static_cast<int>(1000 * seconds) + 1) << seconds << " s";
  EXPECT_GE(allowed, 400 - 2 * 25);
}

// Redis gone: each gateway limits on its own (documented), and shares again once it is back.
TEST(RedisRateLimiter, FallsBackToALocalBucketWhileRedisIsDown) {
  test::TempDir dir;
  test::RedisServer server(dir.path());
  ASSERT_TRUE(server.ok()) << server.error();
  redis::Client connection(endpoint_of(server));
  RedisRateLimiter limiter(connection, RateLimit{60, 3}, {});
  ASSERT_TRUE(limiter.take("acme", now_utc()).allowed);
  server.stop(true);
  int allowed = 0;
  for (int i = 0; i < 6; ++i) {
    if (limiter.take("acme", now_utc()).allowed) ++allowed;
  }
  EXPECT_FALSE(limiter.shared());
  EXPECT_GE(allowed, 3);
  EXPECT_LE(allowed, 4);
  ASSERT_TRUE(server.start()) << server.error();
  EXPECT_TRUE(test::wait_until(
      [&] {
        limiter.take("acme", now_utc());
        return limiter.shared();
      },
      std::chrono::seconds(10)));
}

}  // namespace
}  // namespace stargate::server
