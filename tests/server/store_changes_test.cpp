// The store conformance suite, part 3: the change feed. Every change of a process moves it
// past every change committed before, a reader going on from its cursor sees each process
// once as it is now, cursors the store did not give out are refused, and the listener hears
// the tenant of each committed change.
#include <condition_variable>
#include <functional>
#include <set>
#include <thread>

#include "tests/server/store_fixture.hpp"

namespace stargate::server::store_suite {
namespace {

// Skips a backend that keeps no feed: the gateway does not offer the route there.
#define REQUIRE_CHANGE_FEED()                                                              \
  if (!store_->has_change_feed()) {                                                        \
    GTEST_SKIP() << GetParam() << ": MongoDB alone keeps no change feed (it needs Redis)"; \
  }

std::vector<std::string> ids(const ChangePage& page) {
  std::vector<std::string> out;
  for (const auto& record : page.processes)
    out.push_back(record.view.process_id);
  return out;
}

TEST_P(StoreTest, ChangeFeedReportsEachChangedProcessOnceOldestFirst) {
  REQUIRE_CHANGE_FEED();
  auto start = store_->changes_after({"acme", "", 100});
  ASSERT_TRUE(start) << start.error();
  EXPECT_TRUE(start->cursor_known);
  EXPECT_TRUE(start->processes.empty());  // no cursor: from now on
  ASSERT_FALSE(start->cursor.empty());

  const auto a = store_->create_process(new_process("acme", "k1"))->process.view.process_id;
  const auto b = store_->create_process(new_process("acme", "k2"))->process.view.process_id;
  ASSERT_TRUE(store_->create_process(new_process("globex", "g1")));
  auto created = *store_->changes_after({"acme", start->cursor, 100});
  EXPECT_EQ(ids(created), (std::vector<std::string>{a, b}));  // globex's is not acme's
  EXPECT_EQ(created.processes[0].view.status, ProcessStatus::kAccepted);
  EXPECT_FALSE(created.more);
  EXPECT_NE(created.cursor, start->cursor);

  auto nothing = *store_->changes_after({"acme", created.cursor, 100});
  EXPECT_TRUE(nothing.processes.empty());
  EXPECT_EQ(nothing.cursor, created.cursor);  // nothing new: the same cursor

  // Three changes of a: one entry, as it is now.
  const auto now = now_utc();
  auto claimed = store_->claim_next(now);
  ASSERT_TRUE(claimed && claimed->has_value());
  ASSERT_EQ((*claimed)->view.process_id, a);
  ASSERT_TRUE(store_->update_progress(a, 50, "reserve", now));
  ASSERT_TRUE(store_->complete(a, {{"ok", true}}, now));
  auto done = *store_->changes_after({"acme", created.cursor, 100});
  ASSERT_EQ(ids(done), std::vector<std::string>{a});
  EXPECT_EQ(done.processes[0].view.status, ProcessStatus::kCompleted);
  EXPECT_EQ(done.processes[0].view.result, (nlohmann::json{{"ok", true}}));

  // From the start in pages of one: b (changed once, first), then a (changed last).
  auto first = *store_->changes_after({"acme", start->cursor, 1});
  EXPECT_EQ(ids(first), std::vector<std::string>{b});
  EXPECT_TRUE(first.more);
  auto second = *store_->changes_after({"acme", first.cursor, 1});
  EXPECT_EQ(ids(second), std::vector<std::string>{a});
  auto third = *store_->changes_after({"acme", second.cursor, 1});
  EXPECT_TRUE(third.processes.empty());
  EXPECT_FALSE(third.more);
}

TEST_P(StoreTest, ChangeFeedFollowsFailuresAndRetries) {
  REQUIRE_CHANGE_FEED();
  const auto start = store_->changes_after({"acme", "", 100})->cursor;
  const auto a = store_->create_process(new_process("acme", "k1"))->process.view.process_id;
  ASSERT_TRUE(store_->claim_next(now_utc())->has_value());
  ASSERT_TRUE(store_->fail_process(a, {"E", "m", {}}, true, now_utc()));
  auto failed = *store_->changes_after({"acme", start, 100});
  ASSERT_EQ(ids(failed), std::vector<std::string>{a});
  EXPECT_EQ(failed.processes[0].view.status, ProcessStatus::kFailed);
  ASSERT_EQ(*store_->retry_process("acme", a, now_utc(), std::nullopt),
            ProcessStore::RetryOutcome::kRetried);
  auto retried = *store_->changes_after({"acme", failed.cursor, 100});
  ASSERT_EQ(ids(retried), std::vector<std::string>{a});
  EXPECT_EQ(retried.processes[0].view.status, ProcessStatus::kAccepted);
}

TEST_P(StoreTest, ProgressThatChangesNothingIsNoChange) {
  REQUIRE_CHANGE_FEED();
  const auto a = store_->create_process(new_process("acme", "k1"))->process.view.process_id;
  ASSERT_TRUE(store_->claim_next(now_utc())->has_value());
  ASSERT_TRUE(store_->update_progress(a, 10, "validate", now_utc()));
  const auto after = store_->changes_after({"acme", "", 100})->cursor;
  ASSERT_TRUE(store_->update_progress(a, 10, "validate", now_utc()));
  EXPECT_TRUE(store_->changes_after({"acme", after, 100})->processes.empty());
  ASSERT_TRUE(store_->update_progress(a, 20, "validate", now_utc()));
  EXPECT_EQ(ids(*store_->changes_after({"acme", after, 100})), std::vector<std::string>{a});
}

TEST_P(StoreTest, ChangeFeedRefusesCursorsItDidNotGiveOut) {
  REQUIRE_CHANGE_FEED();
  ASSERT_TRUE(store_->create_process(new_process("acme", "k1")));
  const auto real = store_->changes_after({"acme", "", 100})->cursor;
  for (const std::string& cursor :
       {std::string("nonsense"), std::string("-"), std::string("0"), real + "0000",
        std::string("ffffffffffffffff-1"), real.substr(0, real.size() - 1) + "x",
        // Numbers that are not written as the store writes them, or too long to compare.
        "0" + real, " " + real, real + "\n", real + "-1", std::string("1-01-1"),
        std::string("99999999999999999999999999-1-1"), std::string("1-99999999999999999999-1"),
        std::string(4096, '7')}) {
    auto page = store_->changes_after({"acme", cursor, 100});
    ASSERT_TRUE(page) << page.error();
    EXPECT_FALSE(page->cursor_known) << cursor;
    EXPECT_TRUE(page->processes.empty()) << cursor;
  }
  EXPECT_TRUE(store_->changes_after({"acme", real, 100})->cursor_known);
}

// The listener may hear several changes that come together as one (the scale-out backend
// hears them from Redis, on a thread of its own): each step waits for what it should hear.
TEST_P(StoreTest, ChangeListenerHearsTheTenantOfEveryCommittedChange) {
  REQUIRE_CHANGE_FEED();
  std::mutex mutex;
  std::condition_variable told;
  std::set<std::string> heard;
  store_->on_change([&](const std::string& tenant) {
    std::lock_guard lock(mutex);
    heard.insert(tenant);
    told.notify_all();
  });
  const auto after = [&](const std::function<void()>& change) {
    {
      std::lock_guard lock(mutex);
      heard.clear();
    }
    change();
    std::unique_lock lock(mutex);
    told.wait_for(lock, std::chrono::seconds(5), [&] { return !heard.empty(); });
    return heard;
  };
  using Tenants = std::set<std::string>;
  std::string a;
  EXPECT_EQ(after([&] {
              a = store_->create_process(new_process("acme", "k1"))->process.view.process_id;
            }),
            Tenants{"acme"});
  EXPECT_EQ(after([&] {
              ASSERT_TRUE(store_->create_process(new_process("acme", "k1")));  // a replay
              ASSERT_TRUE(store_->create_process(new_process("globex", "g1")));
            }),
            Tenants{"globex"});
  EXPECT_EQ(after([&] { ASSERT_TRUE(store_->claim_next(now_utc())->has_value()); }),
            Tenants{"acme"});
  EXPECT_EQ(after([&] { ASSERT_TRUE(store_->update_progress(a, 40, "reserve", now_utc())); }),
            Tenants{"acme"});
  EXPECT_EQ(after([&] {
              ASSERT_TRUE(store_->complete(a, {{"ok", true}}, now_utc()));
            }),
            Tenants{"acme"});
  store_->on_change(nullptr);
  ASSERT_TRUE(store_->claim_next(now_utc())->has_value());  // no listener: nobody hears it
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::lock_guard lock(mutex);
  EXPECT_EQ(heard, Tenants{"acme"});  // what it heard before, nothing since
}

}  // namespace
}  // namespace stargate::server::store_suite
