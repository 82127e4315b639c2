// The change feed of the scale-out backend, on a real redis-server and MongoDB-compatible
// server: a change written by a worker is seen and heard by a gateway that is another
// program, and whatever Redis loses (its data, an entry a writer could not add, entries
// trimmed with age) turns into a refused cursor, never into a change silently skipped.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "tests/server/redis_backend_fixture.hpp"

namespace stargate::server {
namespace {

class RedisChangesTest : public RedisBackendTest {
 protected:
  std::string head(Store& store) {
    auto page = store.changes_after({"acme", "", 100});
    EXPECT_TRUE(page) << page.error();
    return page ? page->cursor : "";
  }

  std::vector<std::string> changed_since(Store& store, const std::string& cursor) {
    std::vector<std::string> ids;
    auto page = store.changes_after({"acme", cursor, 100});
    EXPECT_TRUE(page) << page.error();
    if (!page) return ids;
    EXPECT_TRUE(page->cursor_known) << cursor;
    for (const auto& record : page->processes)
      ids.push_back(record.view.process_id);
    return ids;
  }

  // What a store's change listener hears, in order.
  struct Heard {
    std::mutex mutex;
    std::condition_variable told;
    std::vector<std::string> tenants;

    void listen(Store& store) {
      store.on_change([this](const std::string& tenant) {
        std::lock_guard lock(mutex);
        tenants.push_back(tenant);
        told.notify_all();
      });
    }
    void clear() {
      std::lock_guard lock(mutex);
      tenants.clear();
    }
    // Until nothing more is heard for longer than the listener's blocking read (500 ms):
    // the notices of earlier changes (in Redis already) have all come, so what follows is
    // heard for what follows.
    void settle() {
      std::unique_lock lock(mutex);
      for (;;) {
        const auto before = tenants.size();
        if (!told.wait_for(lock, 700ms, [&] { return tenants.size() > before; })) return;
      }
    }
    // What was heard once `count` tenants were (or after 10 s).
    std::vector<std::string> wait_for(std::size_t count) {
      std::unique_lock lock(mutex);
      told.wait_for(lock, 10s, [&] { return tenants.size() >= count; });
      return tenants;
    }
  };

  bool known(Store& store, const std::string& cursor) {
    auto page = store.changes_after({"acme", cursor, 100});
    EXPECT_TRUE(page) << page.error();
    return page && page->cursor_known;
  }
};

TEST_F(RedisChangesTest, AGatewaySeesAndHearsWhatAWorkerChanged) {
  Heard heard;  // outlives the store that calls it
  auto gateway = open(30s);
  auto worker = open(30s);
  heard.listen(*gateway);
  const auto start = head(*gateway);
  const auto id = submit(*gateway, "k1");
  auto claimed = worker->claim_next(now_utc());
  ASSERT_TRUE(claimed && claimed->has_value());
  // The submission's and the claim's notices may still be on their way (a fresh clone's
  // run once heard the claim's after clear()).
  heard.settle();
  heard.clear();
  ASSERT_TRUE(worker->complete(id, {{"ok", true}}, now_utc()));
  EXPECT_EQ(heard.wait_for(1), std::vector<std::string>{"acme"});
  auto page = gateway->changes_after({"acme", start, 100});
  ASSERT_TRUE(page) << page.error();
  ASSERT_EQ(page->processes.size(), 1u);
  EXPECT_EQ(page->processes[0].view.status, ProcessStatus::kCompleted);
  gateway->on_change(nullptr);
}

// While Redis is down the feed answers an error. What was added while the listener could
// not follow is unknown: once it follows again it tells every reader to look (an empty
// tenant), then goes on hearing each change.
TEST_F(RedisChangesTest, AListenerBackFromAnOutageTellsEveryReaderToLook) {
  Heard heard;  // outlives the store that calls it
  auto gateway = open(30s);
  heard.listen(*gateway);
  redis_server_->stop(true);
  // Meanwhile the feed cannot be read: an error (the gateway answers 503), not an empty page.
  EXPECT_FALSE(gateway->changes_after({"acme", "", 100}));
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(redis_server_->start()) << redis_server_->error();
  EXPECT_EQ(heard.wait_for(1), std::vector<std::string>{""});
  submit(*gateway, "k1");
  EXPECT_EQ(heard.wait_for(2), (std::vector<std::string>{"", "acme"}));
  gateway->on_change(nullptr);
}

// A tenant may be named like the feed's own keys ("epochs", "trimmed"): its stream is a key
// of its own (it once was the hash of every tenant's epoch), so its changes are read like
// any other tenant's and the other tenants' cursors stay good.
TEST_F(RedisChangesTest, TenantsNamedLikeTheFeedsOwnKeysHaveFeedsOfTheirOwn) {
  auto gateway = open(30s);
  const auto acme_start = head(*gateway);
  for (const std::string tenant : {"epochs", "trimmed", "changed"}) {
    auto start = gateway->changes_after({tenant, "", 100});
    ASSERT_TRUE(start) << tenant << ": " << start.error();
    NewProcess process;
    process.tenant = tenant;
    process.client_id = "client-" + tenant;
    process.request.client_process_id = "cp-" + tenant;
    process.request.process_type = "order";
    process.request.data = {{"orderId", tenant}};
    process.now = now_utc();
    auto created = gateway->create_process(process);
    ASSERT_TRUE(created) << created.error();
    auto page = gateway->changes_after({tenant, start->cursor, 100});
    ASSERT_TRUE(page) << tenant << ": " << page.error();
    EXPECT_TRUE(page->cursor_known) << tenant;
    ASSERT_EQ(page->processes.size(), 1u) << tenant;
    EXPECT_EQ(page->processes[0].view.process_id, created->process.view.process_id);
  }
  const auto id = submit(*gateway, "k1");
  EXPECT_EQ(changed_since(*gateway, acme_start), std::vector<std::string>{id});
}

// Submissions at once share one insert and one script that puts them on the feed: each
// new process is on it by the time its submitter has its answer, and a key sent twice at
// once makes one process, so one entry.
TEST_F(RedisChangesTest, SubmissionsAtOnceAreEachOnTheFeedWhenAnswered) {
  auto gateway = open(30s);
  // The ids on the tenant's feed, as Redis holds them (every entry, repeats included).
  const auto on_feed = [&] {
    std::vector<std::string> ids;
    auto entries = redis_->command({"XRANGE", "stargate:changes:acme", "-", "+"});
    EXPECT_TRUE(entries) << entries.error();
    if (!entries) return ids;
    for (const auto& entry : entries->elements)
      ids.push_back(entry.elements.at(1).elements.at(1).text);
    return ids;
  };
  constexpr int kThreads = 8, kEach = 25;
  std::mutex mutex;
  std::set<std::string> answered;
  int missing = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Every thread also sends the key "shared-I": one process for all of them.
        for (const auto& key :
             {"t" + std::to_string(t) + "-" + std::to_string(i), "shared-" + std::to_string(i)}) {
          const auto id = submit(*gateway, key);
          const auto now = on_feed();
          std::lock_guard lock(mutex);
          if (std::find(now.begin(), now.end(), id) == now.end()) ++missing;
          answered.insert(id);
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(missing, 0) << "a submission was answered before it was on the feed";
  EXPECT_EQ(answered.size(), std::size_t{kThreads * kEach + kEach});
  const auto ids = on_feed();
  EXPECT_EQ(ids.size(), answered.size()) << "one entry per new process";
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), answered);
}

TEST_F(RedisChangesTest, CursorsOfARedisThatLostItsDataAreRefused) {
  auto gateway = open(30s);
  const auto before = head(*gateway);
  submit(*gateway, "k1");
  ASSERT_TRUE(redis_->command({"FLUSHALL"}));
  EXPECT_FALSE(known(*gateway, before));
  const auto fresh = head(*gateway);
  const auto id = submit(*gateway, "k2");
  EXPECT_EQ(changed_since(*gateway, fresh), std::vector<std::string>{id});
}

// A change made while Redis was down is in MongoDB only: once Redis is back (with its
// data, as after a restart with its append-only file), the cursors of its tenant are
// refused, so that its readers read their processes again rather than miss it.
TEST_F(RedisChangesTest, AChangeThatCouldNotBeRecordedMakesItsTenantResynchronise) {
  redis_server_ = std::make_unique<test::RedisServer>(dir_.file("redis-aof"), true);
  ASSERT_TRUE(redis_server_->ok()) << redis_server_->error();
  redis_ = std::make_shared<redis::Client>(*redis::parse_redis_url(redis_server_->url()));
  auto gateway = open(30s);
  auto worker = open(30s);
  const auto start = head(*gateway);
  const auto id = submit(*gateway, "k1");
  ASSERT_TRUE(worker->claim_next(now_utc())->has_value());
  const auto claimed = head(*gateway);
  redis_server_->stop(true);
  ASSERT_TRUE(worker->update_progress(id, 50, "reserve", now_utc()));  // in MongoDB only
  ASSERT_TRUE(redis_server_->start()) << redis_server_->error();
  EXPECT_TRUE(known(*gateway, claimed));  // Redis kept everything it was told...
  (void)worker->claim_next(now_utc());    // ...and the worker, back in touch, tells the rest
  EXPECT_FALSE(known(*gateway, claimed));
  EXPECT_FALSE(known(*gateway, start));
  const auto fresh = head(*gateway);
  ASSERT_TRUE(worker->complete(id, {{"ok", true}}, now_utc()));
  EXPECT_EQ(changed_since(*gateway, fresh), std::vector<std::string>{id});
}

// The same for a submission: made while Redis is down, it is accepted (its record is in
// MongoDB), its batch's feed entry is lost, and its tenant's cursors are refused once the
// gateway reaches Redis again, so that no reader goes on past it.
TEST_F(RedisChangesTest, ASubmissionMadeWhileRedisWasDownMakesItsTenantResynchronise) {
  redis_server_ = std::make_unique<test::RedisServer>(dir_.file("redis-aof"), true);
  ASSERT_TRUE(redis_server_->ok()) << redis_server_->error();
  redis_ = std::make_shared<redis::Client>(*redis::parse_redis_url(redis_server_->url()));
  auto gateway = open(30s);
  const auto before = head(*gateway);
  redis_server_->stop(true);
  const auto id = submit(*gateway, "k1");
  EXPECT_FALSE(id.empty()) << "a submission needs MongoDB, not Redis";
  ASSERT_TRUE(redis_server_->start()) << redis_server_->error();
  // The client tries a broken connection again at most once a second: wait for an answer.
  EXPECT_TRUE(test::wait_until(
      [&] {
        auto page = gateway->changes_after({"acme", before, 100});
        return page && !page->cursor_known;
      },
      10s))
      << "a cursor from before the lost entry is still taken";
  const auto fresh = head(*gateway);
  const auto next = submit(*gateway, "k2");
  EXPECT_EQ(changed_since(*gateway, fresh), std::vector<std::string>{next});
}

TEST_F(RedisChangesTest, CursorsOlderThanTheRetentionAreRefused) {
  feed_retention_ = 1s;
  auto gateway = open(30s);
  const auto old = head(*gateway);
  submit(*gateway, "k1");
  const auto recent = head(*gateway);
  std::this_thread::sleep_for(2500ms);
  const auto id = submit(*gateway, "k2");  // trims what is older than a second
  EXPECT_FALSE(known(*gateway, old));      // k1's change after it is gone
  EXPECT_EQ(changed_since(*gateway, recent), std::vector<std::string>{id});
}

}  // namespace
}  // namespace stargate::server
