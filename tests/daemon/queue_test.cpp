// Tests of daemon/queue.cpp on real SQLite files.
#include "daemon/queue.hpp"

#include <gtest/gtest.h>

#include "shared/ids.hpp"
#include "shared/sqlite.hpp"
#include "tests/support/process.hpp"

namespace stargate::daemon {
namespace {

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    queue_.reset();
    auto opened = Queue::open(dir_.file("state/queue.db"), clock_);
    ASSERT_TRUE(opened) << opened.error();
    queue_ = std::move(*opened);
  }
  LocalRecord enqueue(const std::string& id = "") {
    auto result = queue_->enqueue({id, "order", {{"orderId", "O1"}}});
    EXPECT_TRUE(result) << result.error();
    return result->record;
  }
  static Accepted accepted(const std::string& id) {
    return {"PROC-20260114-00001", id, "order", now_utc(), std::nullopt};
  }

  test::TempDir dir_;
  SystemClock clock_;
  std::unique_ptr<Queue> queue_;
};

TEST_F(QueueTest, EnqueuedRequestsAreOnDiskWithTheirKey) {
  const auto record = enqueue();
  EXPECT_TRUE(is_uuid(record.client_process_id));
  EXPECT_TRUE(is_uuid(record.idempotency_key));
  EXPECT_EQ(record.state, LocalState::kQueued);
  reopen();
  auto again = queue_->get(record.client_process_id);
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->idempotency_key, record.idempotency_key);
  EXPECT_EQ((*again)->data["orderId"], "O1");
}

TEST_F(QueueTest, AKnownIdIsReportedNotQueuedTwice) {
  enqueue("my-id");
  auto second = queue_->enqueue({"my-id", "order", {{"other", true}}});
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->existed);
  EXPECT_EQ(second->record.data["orderId"], "O1");
  EXPECT_EQ(queue_->list({})->size(), 1u);
}

TEST_F(QueueTest, SendsInQueueOrder) {
  const auto a = enqueue("a"), b = enqueue("b"), c = enqueue("c");
  EXPECT_EQ((*queue_->next_queued())->client_process_id, "a");
  ASSERT_TRUE(queue_->record_send_failure("a", "HTTP 503"));
  EXPECT_EQ((*queue_->next_queued())->client_process_id, "a");  // a failure keeps its place
  EXPECT_EQ((*queue_->next_queued())->attempts, 1);
  ASSERT_TRUE(queue_->mark_accepted("a", accepted("a")));
  EXPECT_EQ((*queue_->next_queued())->client_process_id, "b");
  ASSERT_TRUE(queue_->mark_rejected("b", {{"code", "INVALID_REQUEST"}}));
  EXPECT_EQ((*queue_->next_queued())->client_process_id, "c");
  EXPECT_EQ(queue_->active()->size(), 1u);
}

TEST_F(QueueTest, StatusUpdatesMoveForwardOnly) {
  enqueue("a");
  ASSERT_TRUE(queue_->mark_accepted("a", accepted("a")));
  ProcessView view;
  view.process_id = "PROC-20260114-00001";
  view.status = ProcessStatus::kProcessing;
  view.progress = 45;
  view.current_step = "inventory_check";
  ASSERT_TRUE(queue_->apply_status("a", view));
  view.status = ProcessStatus::kCompleted;
  view.result = {{"trackingNumber", "TRACK-1"}};
  ASSERT_TRUE(queue_->apply_status("a", view));
  auto record = **queue_->get("a");
  EXPECT_EQ(record.state, LocalState::kCompleted);
  EXPECT_EQ(record.progress, 100);
  EXPECT_EQ(record.result["trackingNumber"], "TRACK-1");
  EXPECT_TRUE(record.completed_at.has_value());
  view.status = ProcessStatus::kProcessing;
  EXPECT_FALSE(queue_->apply_status("a", view));  // completed stays completed
  EXPECT_EQ((**queue_->get("a")).state, LocalState::kCompleted);
}

TEST_F(QueueTest, OnlyQueuedRequestsCanBeCancelled) {
  enqueue("a");
  enqueue("b");
  ASSERT_TRUE(queue_->mark_accepted("b", accepted("b")));
  EXPECT_TRUE(queue_->cancel("a"));
  auto refused = queue_->cancel("b");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("accepted -> cancelled"), std::string::npos);
  EXPECT_FALSE(queue_->cancel("missing"));
}

TEST_F(QueueTest, ListFilters) {
  enqueue("a");
  enqueue("b");
  ASSERT_TRUE(queue_->mark_accepted("a", accepted("a")));
  ListFilter filter;
  filter.state = LocalState::kQueued;
  auto queued = *queue_->list(filter);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].client_process_id, "b");
  EXPECT_EQ((*queue_->list({}))[0].client_process_id, "b");  // newest first
  EXPECT_EQ(*queue_->count(LocalState::kAccepted), 1u);
}

TEST_F(QueueTest, BatchesCommitTogetherAndFailAlone) {
  std::vector<NewRequest> batch;
  for (int i = 0; i < 50; ++i)
    batch.push_back({"r" + std::to_string(i), "order", {}});
  batch.push_back({"r0", "order", {}});  // already in this very batch: reported, not queued
  auto results = queue_->enqueue_batch(batch);
  ASSERT_EQ(results.size(), 51u);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(results[i]) << results[i].error();
    EXPECT_FALSE(results[i]->existed);
  }
  EXPECT_TRUE(results[50]->existed);
  reopen();
  EXPECT_EQ(*queue_->count(LocalState::kQueued), 50u);
  EXPECT_EQ((*queue_->next_queued())->client_process_id, "r0");  // queue order kept
}

TEST_F(QueueTest, AnUnchangedStatusWritesNothing) {
  enqueue("a");
  ASSERT_TRUE(queue_->mark_accepted("a", accepted("a")));
  ProcessView view;
  view.status = ProcessStatus::kProcessing;
  view.progress = 10;
  EXPECT_TRUE(*queue_->apply_status("a", view));
  const auto updated = (**queue_->get("a")).updated_at;
  EXPECT_FALSE(*queue_->apply_status("a", view));
  EXPECT_EQ((**queue_->get("a")).updated_at, updated);
  view.progress = 20;
  EXPECT_TRUE(*queue_->apply_status("a", view));
}

TEST_F(QueueTest, HooksArePendingUntilMarkedAndOnlyThenPruned) {
  enqueue("a");
  enqueue("b");
  ASSERT_TRUE(queue_->cancel("a"));
  auto due = *queue_->hooks_due();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].client_process_id, "a");
  const auto later = now_utc() + std::chrono::hours(1);
  EXPECT_EQ(*queue_->prune(later), 0u);  // its hook has not run
  ASSERT_TRUE(queue_->mark_hook_done("a"));
  EXPECT_TRUE(queue_->hooks_due()->empty());
  EXPECT_EQ(*queue_->prune(now_utc() - std::chrono::hours(1)), 0u);  // not old enough
  EXPECT_EQ(*queue_->prune(later), 1u);
  EXPECT_FALSE(queue_->get("a")->has_value());
  EXPECT_TRUE(queue_->get("b")->has_value());  // still queued: never pruned
}

TEST_F(QueueTest, RetryOnlyAfterARetryableFailure) {
  enqueue("a");
  ASSERT_TRUE(queue_->mark_accepted("a", accepted("a")));
  EXPECT_FALSE(queue_->mark_retried("a"));  // not failed
  ProcessView view;
  view.status = ProcessStatus::kFailed;
  view.error = ProcessError{"E", "m", nlohmann::json::object()};
  view.retryable = true;
  ASSERT_TRUE(queue_->apply_status("a", view));
  ASSERT_TRUE(queue_->mark_hook_done("a"));
  ASSERT_TRUE(queue_->mark_retried("a"));
  const auto record = **queue_->get("a");
  EXPECT_EQ(record.state, LocalState::kAccepted);
  EXPECT_TRUE(record.error.is_null());
  EXPECT_FALSE(record.hook_done);  // the next terminal state gets its own delivery
}

// A queue file written by the previous schema (tests/fixtures/queue-v1.sql) is migrated
// when the daemon starts, and nothing in it is lost.
TEST(QueueSchema, MigratesAVersionOneFileKeepingEverything) {
  test::TempDir dir;
  {
    db::Database old(dir.file("queue.db"));
    old.exec(test::read_file(std::string(STARGATE_SOURCE_DIR) + "/tests/fixtures/queue-v1.sql"));
    ASSERT_EQ(old.user_version(), 1);
  }
  SystemClock clock;
  auto queue = Queue::open(dir.file("queue.db"), clock);
  ASSERT_TRUE(queue) << queue.error();
  {
    db::Database check(dir.file("queue.db"));
    EXPECT_EQ(check.user_version(), Queue::kSchemaVersion);
  }
  auto next = *(*queue)->next_queued();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->client_process_id, "old-queued");
  EXPECT_EQ(next->idempotency_key,
            "8d3b5f40-2c6e-4071-8cbd-3e4f5a6b7c82");  // same key: no duplicate
  EXPECT_EQ(next->attempts, 3);
  auto active = *(*queue)->active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].process_id, "PROC-20261101-00002");
  auto done = **(*queue)->get("old-completed");
  EXPECT_EQ(done.result["trackingNumber"], "TRACK-2026110100001");
  EXPECT_TRUE(done.hook_done);
  EXPECT_TRUE((*queue)->hooks_due()->empty());
  // And it works as a current file: a new request queues behind the old one.
  ASSERT_TRUE((*queue)->enqueue({"new", "order", {}}));
  EXPECT_EQ((*(*queue)->next_queued())->client_process_id, "old-queued");
  EXPECT_EQ(*(*queue)->feed_cursor("https://gateway.example.com"), "");
}

TEST_F(QueueTest, KeepsOneFeedCursorPerGatewayAcrossRestarts) {
  EXPECT_EQ(*queue_->feed_cursor("https://a.example"), "");
  ASSERT_TRUE(queue_->save_feed_cursor("https://a.example", "c1"));
  ASSERT_TRUE(queue_->save_feed_cursor("https://a.example", "c2"));
  ASSERT_TRUE(queue_->save_feed_cursor("https://b.example", "other"));
  reopen();
  EXPECT_EQ(*queue_->feed_cursor("https://a.example"), "c2");
  EXPECT_EQ(*queue_->feed_cursor("https://b.example"), "other");
  ASSERT_TRUE(queue_->save_feed_cursor("https://a.example", ""));  // forgotten
  EXPECT_EQ(*queue_->feed_cursor("https://a.example"), "");
}

TEST(QueueSchema, RefusesANewerFile) {
  test::TempDir dir;
  {
    db::Database db(dir.file("queue.db"));
    db.set_user_version(Queue::kSchemaVersion + 1);
  }
  SystemClock clock;
  auto opened = Queue::open(dir.file("queue.db"), clock);
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().find("newer than this stargated"), std::string::npos);
}

}  // namespace
}  // namespace stargate::daemon
