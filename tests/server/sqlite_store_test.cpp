// Tests of server/store/sqlite/sqlite_store.cpp on a real database file.
#include "server/store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>

#include "server/store/audit_chain.hpp"

#include <thread>

#include "shared/sqlite.hpp"
#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

NewProcess new_process(const std::string& tenant, const std::string& key,
                       const std::string& hash = "h1") {
  NewProcess process;
  process.tenant = tenant;
  process.client_id = "client-" + tenant;
  process.request.client_process_id = "cp-" + key;
  process.request.process_type = "order";
  process.request.data = {{"orderId", "O1"}};
  process.request.idempotency_key = key;
  process.request_hash = hash;
  process.now = *parse_timestamp("2026-01-14T12:48:00Z");
  return process;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = SqliteStore::open(dir_.file("store.db"));
    ASSERT_TRUE(opened) << opened.error();
    store_ = std::move(*opened);
  }
  test::TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(StoreTest, CreatesProcessesWithDailyIds) {
  auto a = store_->create_process(new_process("acme", "k1"));
  auto b = store_->create_process(new_process("acme", "k2"));
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->inserted);
  EXPECT_EQ(a->process.view.process_id, "PROC-20260114-00001");
  EXPECT_EQ(b->process.view.process_id, "PROC-20260114-00002");
  EXPECT_EQ(a->process.view.status, ProcessStatus::kAccepted);
  auto next_day = new_process("acme", "k3");
  next_day.now += std::chrono::hours(24);
  EXPECT_EQ(store_->create_process(next_day)->process.view.process_id, "PROC-20260115-00001");
}

// The store holds a key for the first request that brings it and answers every later one
// with that process and the first request's hash (processes/ decides replay or conflict).
TEST_F(StoreTest, AKeyHeldAnswersWithItsProcessAndWritesNothing) {
  auto first = store_->create_process(new_process("acme", "k1", "hash-a"));
  auto replay = store_->create_process(new_process("acme", "k1", "hash-a"));
  auto reused = store_->create_process(new_process("acme", "k1", "hash-b"));
  ASSERT_TRUE(first && replay && reused);
  EXPECT_TRUE(first->inserted);
  EXPECT_FALSE(replay->inserted);
  EXPECT_EQ(replay->held_request_hash, "hash-a");
  EXPECT_EQ(replay->process.view.process_id, first->process.view.process_id);
  EXPECT_FALSE(reused->inserted);
  EXPECT_EQ(reused->held_request_hash, "hash-a");
  EXPECT_EQ(reused->process.view.process_id, first->process.view.process_id);
  auto counts = store_->process_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->by_status["accepted"], 1);
  // Keys belong to a tenant: another tenant's identical key is a new process.
  auto other = store_->create_process(new_process("globex", "k1", "hash-a"));
  EXPECT_TRUE(other->inserted);
  EXPECT_NE(other->process.view.process_id, first->process.view.process_id);
}

TEST_F(StoreTest, ConcurrentSubmissionsWithOneKeyCreateOneProcess) {
  std::vector<std::thread> threads;
  std::atomic<int> created{0}, replayed{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      auto result = store_->create_process(new_process("acme", "same-key"));
      if (result && result->inserted) ++created;
      if (result && !result->inserted) ++replayed;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(created, 1);
  EXPECT_EQ(replayed, 15);
}

TEST_F(StoreTest, TenantsOnlySeeTheirOwn) {
  auto a = store_->create_process(new_process("acme", "k1"));
  const auto id = a->process.view.process_id;
  EXPECT_TRUE(store_->get_process("acme", id)->has_value());
  EXPECT_FALSE(store_->get_process("globex", id)->has_value());
  ListQuery query;
  query.tenant = "globex";
  EXPECT_TRUE(store_->list_processes(query)->empty());
}

TEST_F(StoreTest, QueueRunsInOrderAndRecordsOutcomes) {
  const auto now = now_utc();
  auto a = store_->create_process(new_process("acme", "k1"));
  auto b = store_->create_process(new_process("acme", "k2"));
  auto first = store_->claim_next(now);
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->view.process_id, a->process.view.process_id);
  EXPECT_EQ((*first)->view.status, ProcessStatus::kProcessing);
  ASSERT_TRUE(store_->update_progress(a->process.view.process_id, 50, "reserve", now));
  auto view = (*store_->get_process("acme", a->process.view.process_id))->view;
  EXPECT_EQ(view.progress, 50);
  EXPECT_EQ(view.current_step, "reserve");
  ASSERT_TRUE(store_->complete(a->process.view.process_id, {{"ok", true}}, now));
  EXPECT_FALSE(store_->complete(a->process.view.process_id, {{"ok", true}}, now));  // not twice
  auto second = store_->claim_next(now);
  EXPECT_EQ((*second)->view.process_id, b->process.view.process_id);
  ASSERT_TRUE(store_->fail_process(b->process.view.process_id, {"E", "m", {}}, true, now));
  EXPECT_FALSE(store_->claim_next(now)->has_value());
  auto failed = (*store_->get_process("acme", b->process.view.process_id))->view;
  EXPECT_EQ(failed.status, ProcessStatus::kFailed);
  EXPECT_TRUE(failed.retryable);
  EXPECT_EQ(failed.error->code, "E");
}

TEST_F(StoreTest, InterruptedProcessesAreRequeued) {
  auto a = store_->create_process(new_process("acme", "k1"));
  ASSERT_TRUE(store_->claim_next(now_utc())->has_value());
  EXPECT_FALSE(store_->claim_next(now_utc())->has_value());
  EXPECT_EQ(*store_->requeue_interrupted(now_utc()), 1u);
  auto again = store_->claim_next(now_utc());
  EXPECT_EQ((*again)->view.process_id, a->process.view.process_id);
}

TEST_F(StoreTest, ListIsNewestFirstAndPaginated) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(store_->create_process(new_process("acme", "k" + std::to_string(i))));
  ListQuery query;
  query.tenant = "acme";
  query.limit = 2;
  auto page1 = *store_->list_processes(query);
  ASSERT_EQ(page1.size(), 2u);
  EXPECT_EQ(page1[0].view.process_id, "PROC-20260114-00005");
  query.cursor = page1[1].view.process_id;
  auto page2 = *store_->list_processes(query);
  EXPECT_EQ(page2[0].view.process_id, "PROC-20260114-00003");
}

TEST_F(StoreTest, ClientsRoundTrip) {
  ClientRecord client{"sgc_1", "acme", "$argon2id$...", {"order", "shipping"}, now_utc(), false};
  ASSERT_TRUE(store_->add_client(client));
  EXPECT_FALSE(store_->add_client(client));  // ids are unique
  auto found = store_->find_client("sgc_1");
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->process_types, client.process_types);
  EXPECT_FALSE(store_->find_client("sgc_2")->has_value());
}

TEST_F(StoreTest, RefreshTokensRotateAndReuseRevokesTheFamily) {
  const auto now = now_utc();
  ASSERT_TRUE(store_->add_client({"sgc_1", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(store_->add_refresh_token(
      {"r1", "sgc_1", "fam", "process:order", now + std::chrono::hours(1)}));
  EXPECT_TRUE(*store_->token_usable("sgc_1", "fam"));
  auto rotated = store_->rotate_refresh_token("r1", "r2", now + std::chrono::hours(1), now);
  ASSERT_TRUE(rotated);
  ASSERT_EQ(rotated->kind, RefreshResult::Kind::kRotated);
  EXPECT_EQ(rotated->client.tenant, "acme");
  EXPECT_EQ(rotated->next.family, "fam");
  EXPECT_EQ(rotated->next.scopes, "process:order");
  // r1 again: reuse. The family is revoked, so r2 and the access tokens of the family die.
  EXPECT_EQ(store_->rotate_refresh_token("r1", "r3", now, now)->kind, RefreshResult::Kind::kReused);
  EXPECT_FALSE(*store_->token_usable("sgc_1", "fam"));
  EXPECT_EQ(store_->rotate_refresh_token("r2", "r4", now, now)->kind,
            RefreshResult::Kind::kInvalid);
  EXPECT_EQ(store_->rotate_refresh_token("unknown", "r5", now, now)->kind,
            RefreshResult::Kind::kInvalid);
}

TEST_F(StoreTest, ExpiredRefreshTokensAndRevokedClients) {
  const auto now = now_utc();
  ASSERT_TRUE(store_->add_client({"sgc_1", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(store_->add_refresh_token({"old", "sgc_1", "f1", "", now - std::chrono::seconds(1)}));
  EXPECT_EQ(store_->rotate_refresh_token("old", "n", now, now)->kind,
            RefreshResult::Kind::kInvalid);
  ASSERT_TRUE(store_->add_refresh_token({"r", "sgc_1", "f2", "", now + std::chrono::hours(1)}));
  ASSERT_TRUE(store_->revoke_client("sgc_1", now));
  EXPECT_FALSE(*store_->token_usable("sgc_1", "f2"));
  EXPECT_FALSE(*store_->token_usable("sgc_1", ""));
  EXPECT_EQ(store_->rotate_refresh_token("r", "n2", now, now)->kind, RefreshResult::Kind::kInvalid);
  EXPECT_FALSE(store_->revoke_client("sgc_missing", now));
  EXPECT_FALSE(*store_->token_usable("sgc_missing", ""));
}

TEST_F(StoreTest, IdempotencyKeysArePrunedAfterTheirTime) {
  auto first = store_->create_process(new_process("acme", "k1"));
  const auto created = first->process.view.created_at;
  EXPECT_EQ(*store_->prune_idempotency_keys(created), 0u);
  EXPECT_EQ(*store_->prune_idempotency_keys(created + std::chrono::milliseconds(1)), 1u);
  // The key is gone: the same key now makes a new process.
  EXPECT_TRUE(store_->create_process(new_process("acme", "k1"))->inserted);
}

TEST_F(StoreTest, OnlyRetryableFailuresAreRetried) {
  const auto now = now_utc();
  auto a = store_->create_process(new_process("acme", "k1"));
  const auto id = a->process.view.process_id;
  const auto later = now + std::chrono::minutes(10);
  EXPECT_EQ(*store_->retry_process("acme", id, now, later), Store::RetryOutcome::kNotRetryable);
  ASSERT_TRUE(store_->claim_next(now)->has_value());
  ASSERT_TRUE(store_->fail_process(id, {"E", "m", {}}, true, now));
  EXPECT_EQ(*store_->retry_process("globex", id, now, later), Store::RetryOutcome::kNotFound);
  EXPECT_EQ(*store_->retry_process("acme", id, now, later), Store::RetryOutcome::kRetried);
  auto record = **store_->get_process("acme", id);
  EXPECT_EQ(record.view.status, ProcessStatus::kAccepted);
  EXPECT_EQ(record.attempt, 2);
  EXPECT_FALSE(record.view.error.has_value());
  EXPECT_EQ(to_unix_ms(*record.view.estimated_completion), to_unix_ms(later));
  ASSERT_TRUE(store_->claim_next(now)->has_value());  // back on the queue
  ASSERT_TRUE(store_->fail_process(id, {"E", "m", {}}, false, now));
  EXPECT_EQ(*store_->retry_process("acme", id, now, later), Store::RetryOutcome::kNotRetryable);
}

TEST_F(StoreTest, AuditChainDetectsEditsAndDeletions) {
  const auto now = now_utc();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->append_audit({{now, "request", {{"n", i}}}}));
  }
  auto check = verify_audit(*store_);
  ASSERT_TRUE(check && check->intact);
  EXPECT_EQ(check->records, 5);
  EXPECT_EQ(check->head_hash.size(), 64u);
  {
    db::Database db(dir_.file("store.db"));
    db.exec("UPDATE audit SET record = replace(record, '\"n\":2', '\"n\":7') WHERE seq = 3");
  }
  check = verify_audit(*store_);
  EXPECT_FALSE(check->intact);
  EXPECT_EQ(check->bad_seq, 3);
  EXPECT_NE(check->problem.find("edited"), std::string::npos);
}

TEST_F(StoreTest, AuditChainDetectsADeletedRecord) {
  const auto now = now_utc();
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(store_->append_audit({{now, "request", {{"n", i}}}}));
  {
    db::Database db(dir_.file("store.db"));
    db.exec("DELETE FROM audit WHERE seq = 2");
  }
  auto check = verify_audit(*store_);
  EXPECT_FALSE(check->intact);
  EXPECT_EQ(check->bad_seq, 3);
  // Re-hashing the edited record alone does not help: the next record no longer follows.
  {
    db::Database db(dir_.file("store.db"));
    db.exec(
        "INSERT INTO audit (seq, time, record, prev_hash, hash) SELECT 2, time, record, "
        "prev_hash, hash FROM audit WHERE seq = 1");
  }
  EXPECT_FALSE(verify_audit(*store_)->intact);
}

TEST_F(StoreTest, StateChangesAreAuditedWithTheChange) {
  auto a = store_->create_process(new_process("acme", "k1"));
  ASSERT_TRUE(store_->claim_next(now_utc())->has_value());
  ASSERT_TRUE(store_->complete(a->process.view.process_id, {{"ok", true}}, now_utc()));
  std::vector<std::string> to;
  ASSERT_TRUE(store_->scan_audit(TimePoint{}, [&](const AuditRecord& r) {
    to.push_back(nlohmann::json::parse(r.record)["to"]);
  }));
  EXPECT_EQ(to, (std::vector<std::string>{"accepted", "processing", "completed"}));
  EXPECT_TRUE(verify_audit(*store_)->intact);
}

// A database of the previous version (4, before stock reservations) keeps its processes and
// gains the new tables when a newer server opens it.
TEST(SqliteStoreSchema, UpgradesAVersionFourDatabase) {
  test::TempDir dir;
  std::string id;
  {
    auto store = std::move(*SqliteStore::open(dir.file("store.db")));
    NewProcess process;
    process.tenant = "acme";
    process.client_id = "c";
    process.request = {"cp-1", "order", {{"orderId", "O"}}, ""};
    process.now = now_utc();
    id = store->create_process(process)->process.view.process_id;
  }
  {
    db::Database db(dir.file("store.db"));
    db.exec("DROP TABLE stock_reservations; DROP TABLE stock_reserved;");
    db.set_user_version(4);
  }
  auto store = SqliteStore::open(dir.file("store.db"));
  ASSERT_TRUE(store) << store.error();
  EXPECT_TRUE((**store).get_process("acme", id)->has_value());
  EXPECT_TRUE((**store).reserve_stock(id, {{"SKU-001", 2, 5}})->reserved);
  EXPECT_EQ(*(**store).reserved_stock({}, ""),
            (std::map<std::string, std::int64_t>{{"SKU-001", 2}}));
  db::Database check(dir.file("store.db"));
  EXPECT_EQ(check.user_version(), SqliteStore::kSchemaVersion);
}

TEST(SqliteStoreSchema, RefusesANewerDatabase) {
  test::TempDir dir;
  {
    db::Database db(dir.file("store.db"));
    db.set_user_version(SqliteStore::kSchemaVersion + 1);
  }
  auto opened = SqliteStore::open(dir.file("store.db"));
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().find("newer"), std::string::npos);
}

}  // namespace
}  // namespace stargate::server
