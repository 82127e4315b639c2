// The store conformance suite, the audit trail: whole and verifiable whatever the number of
// writers (one chain on SQLite, one per writer on MongoDB), and every edit, deletion or copy
// of a record found (see store_test.cpp).
#include "server/store/audit_log.hpp"
#include "tests/server/store_fixture.hpp"

namespace stargate::server::store_suite {
namespace {

using namespace std::chrono_literals;

// Records are written in the order they come, which is not always the order of their times
// (a request's record has the time it arrived; concurrent requests finish in any order):
// a scan from a time finds every record at or after it, wherever it is in its batch.
TEST_P(StoreTest, AScanFromATimeFindsRecordsWrittenOutOfTimeOrder) {
  const TimePoint t = now_utc() - 1h;
  ASSERT_TRUE(store_->append_audit({{t + 1s, "request", {{"n", 1}}},
                                    {t + 3s, "request", {{"n", 3}}},
                                    {t, "request", {{"n", 0}}}}));
  std::vector<int> seen;
  ASSERT_TRUE(store_->scan_audit(t + 2s, [&](const AuditRecord& r) {
    seen.push_back(nlohmann::json::parse(r.record).value("n", -1));
  }));
  EXPECT_EQ(seen, std::vector<int>{3});
  seen.clear();
  ASSERT_TRUE(store_->scan_audit(t, [&](const AuditRecord& r) {
    seen.push_back(nlohmann::json::parse(r.record).value("n", -1));
  }));
  EXPECT_EQ(seen, (std::vector<int>{1, 3, 0}));
}

// Several writers append at once: every record is there, in order, verified.
TEST_P(StoreTest, TwoWritersKeepAVerifiableAuditTrail) {
  auto other = second_store();
  ASSERT_TRUE(other);
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < 4; ++i) {
    Store& store = i % 2 == 0 ? *store_ : *other;
    threads.emplace_back([&, i] {
      for (int n = 0; n < 10; ++n) {
        // Batches of one and of three, as the audit batcher and state changes write them.
        std::vector<AuditEvent> batch;
        for (int k = 0; k < (n % 2 == 0 ? 1 : 3); ++k)
          batch.push_back({now_utc(), "request", {{"writer", i}, {"n", n}, {"k", k}}});
        if (!store.append_audit(batch)) ++failed;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failed, 0);
  auto check = verify_audit(*other);
  ASSERT_TRUE(check) << check.error();
  EXPECT_TRUE(check->intact) << check->problem;
  EXPECT_EQ(check->records, 4 * (5 * 1 + 5 * 3));
  EXPECT_EQ(check->chains, GetParam() == "sqlite" ? 1 : 2);
}

// Requests recorded faster than the store takes them (eight threads in a tight loop): the
// queue stays within AuditLog::kBehind (the callers wait for the writer instead), not one
// record is lost, and every one is in the verified trail afterwards.
TEST_P(StoreTest, AFloodOfRequestRecordsIsSlowedToWhatTheStoreTakesAndLosesNone) {
  constexpr int kThreads = 8;
  constexpr int kEach = 2000;
  std::atomic<std::size_t> most_pending{0};
  {
    AuditLog log(*store_);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        for (int n = 0; n < kEach; ++n) {
          log.record({now_utc(), "request", {{"thread", i}, {"n", n}}});
          const std::size_t pending = log.pending();
          std::size_t most = most_pending.load();
          while (pending > most && !most_pending.compare_exchange_weak(most, pending)) {
          }
        }
      });
    }
    for (auto& t : threads)
      t.join();
    log.flush();
    EXPECT_EQ(log.lost(), 0u);
    EXPECT_EQ(log.pending(), 0u);
  }
  EXPECT_LE(most_pending.load(), AuditLog::kBehind + kThreads);
  auto check = verify_audit(*store_);
  ASSERT_TRUE(check) << check.error();
  EXPECT_TRUE(check->intact) << check->problem;
  EXPECT_EQ(check->records, kThreads * kEach);
}

// While the store fails (MongoDB stopped), request records wait for it up to the log's
// bound, and past it are counted lost, not kept without end; once it is back, everything
// that waited goes in, and the trail holds exactly what was not counted lost.
TEST_P(StoreTest, RecordsWaitingForAFailedStoreAreBoundedAndCountedWhenLost) {
  // Stopping the engine: MongoDB's (the SQLite store fails only with its disk).
  if (GetParam() == "sqlite") GTEST_SKIP() << "stops the MongoDB server; run on mongo";
  constexpr std::size_t kBound = 50;
  AuditLog log(*store_, kBound);
  log.record({now_utc(), "request", {{"n", 0}}});
  log.flush();
  mongo_->stop(true);
  int recorded = 1;
  // Until the writer has found the store failing and the bound is reached (each record
  // is queued at once: nothing waits on a failed store).
  ASSERT_TRUE(test::wait_until(
      [&] {
        for (int k = 0; k < 20; ++k)
          log.record({now_utc(), "request", {{"n", recorded++}}});
        return log.lost() > 0;
      },
      30s));
  EXPECT_LE(log.pending(), kBound + AuditLog::kMaxBatch);
  const std::uint64_t lost = log.lost();
  ASSERT_TRUE(mongo_->start()) << mongo_->error();
  ASSERT_TRUE(test::wait_until([&] { return log.pending() == 0; }, 30s)) << log.pending();
  log.flush();
  EXPECT_EQ(log.lost(), lost);
  auto check = verify_audit(*store_);
  ASSERT_TRUE(check) << check.error();
  EXPECT_TRUE(check->intact) << check->problem;
  EXPECT_EQ(check->records, recorded - static_cast<std::int64_t>(lost));
}

// A trail of large records (50 MB) is written and read whole: on MongoDB a block is closed
// at about 1 MB, and a scan asks for replies of 16 blocks, which fit a message (FerretDB
// filled one past its 48 MB otherwise).
TEST_P(StoreTest, ALargeTrailIsReadWhole) {
  // The limits are MongoDB's, and Redis plays no part in the audit: the one MongoDB store
  // is enough (the test writes and hashes 50 MB).
  if (GetParam() != "mongo") GTEST_SKIP() << "MongoDB's message sizes; run on mongo";
  const std::string large(20000, 'x');
  for (int b = 0; b < 5; ++b) {
    std::vector<AuditEvent> batch;
    for (int n = 0; n < 500; ++n)
      batch.push_back({now_utc(), "request", {{"b", b}, {"n", n}, {"large", large}}});
    ASSERT_TRUE(store_->append_audit(batch));
  }
  auto check = verify_audit(*store_);
  ASSERT_TRUE(check) << check.error();
  EXPECT_TRUE(check->intact) << check->problem;
  EXPECT_EQ(check->records, 5 * 500);
}

// Fields with tabs, newlines, a NUL, quotes and backslashes (a path or a client id as a
// hostile request may carry them) come back from the trail as they went in, and it verifies:
// on MongoDB a block keeps a record a line, its fields split by tabs.
TEST_P(StoreTest, RecordsWithControlCharactersReadBackAsWritten) {
  const std::string hostile = std::string("a\tb\nc\r\"d\\e") + std::string(1, '\0') + "f\x01";
  ASSERT_TRUE(store_->append_audit({{now_utc(), "request", {{"path", hostile}}},
                                    {now_utc(), "request", {{"path", "\t\t\n\n"}}}}));
  std::vector<std::string> paths;
  ASSERT_TRUE(store_->scan_audit(TimePoint{}, [&](const AuditRecord& r) {
    paths.push_back(nlohmann::json::parse(r.record).value("path", ""));
  }));
  EXPECT_EQ(paths, (std::vector<std::string>{hostile, "\t\t\n\n"}));
  auto check = verify_audit(*store_);
  ASSERT_TRUE(check) << check.error();
  EXPECT_TRUE(check->intact) << check->problem;
  EXPECT_EQ(check->records, 2);
}

// Writers taking turns: each record is where it belongs, whatever the other wrote between.
TEST_P(StoreTest, WritersTakingTurnsKeepAVerifiableAuditTrail) {
  auto other = second_store();
  ASSERT_TRUE(other);
  ASSERT_TRUE(store_->append_audit({{now_utc(), "request", {{"n", 0}}}}));
  for (int n = 1; n <= 37; ++n)
    ASSERT_TRUE(other->append_audit({{now_utc(), "request", {{"n", n}}}}));
  ASSERT_TRUE(store_->append_audit({{now_utc(), "request", {{"n", 38}}}}));
  auto check = verify_audit(*store_);
  ASSERT_TRUE(check) << check.error();
  EXPECT_TRUE(check->intact) << check->problem;
  EXPECT_EQ(check->records, 39);
}

TEST_P(StoreTest, AuditChainDetectsEditsAndDeletions) {
  const auto now = now_utc();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->append_audit({{now, "request", {{"n", i}}}}));
  }
  auto check = verify_audit(*store_);
  ASSERT_TRUE(check && check->intact);
  EXPECT_EQ(check->records, 5);
  EXPECT_EQ(check->head_hash.size(), 64u);
  edit_audit_record(3, "\"n\":2", "\"n\":7");
  check = verify_audit(*store_);
  EXPECT_FALSE(check->intact);
  EXPECT_EQ(check->bad_seq, 3);
  EXPECT_NE(check->problem.find("edited"), std::string::npos);
}

TEST_P(StoreTest, AuditChainDetectsADeletedRecord) {
  const auto now = now_utc();
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(store_->append_audit({{now, "request", {{"n", i}}}}));
  delete_audit_record(2);
  auto check = verify_audit(*store_);
  EXPECT_FALSE(check->intact);
  EXPECT_EQ(check->bad_seq, 3);
  // Re-hashing the edited record alone does not help: the next record no longer follows.
  copy_first_audit_record_to(2);
  EXPECT_FALSE(verify_audit(*store_)->intact);
}

TEST_P(StoreTest, StateChangesAreAuditedWithTheChange) {
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

// Chains of several writers, handed to the verifier interleaved: each is checked on its
// own, and a record relabelled into another chain, or missing from one, is found.
TEST(AuditVerifierTest, ChecksEveryChainOnItsOwn) {
  const auto event = [](int n) { return AuditEvent{now_utc(), "request", {{"n", n}}}; };
  std::vector<AuditRecord> a, b;
  for (int n = 0; n < 3; ++n) {
    a.push_back(chain_audit_record(a.empty() ? 0 : a.back().seq,
                                   a.empty() ? kAuditGenesis : a.back().hash, event(n), "gw-a"));
    b.push_back(chain_audit_record(b.empty() ? 0 : b.back().seq,
                                   b.empty() ? kAuditGenesis : b.back().hash, event(n), "gw-b"));
  }
  AuditVerifier whole;
  for (int n = 0; n < 3; ++n) {
    whole.add(a[n]);
    whole.add(b[n]);
  }
  EXPECT_TRUE(whole.result().intact) << whole.result().problem;
  EXPECT_EQ(whole.result().records, 6);
  EXPECT_EQ(whole.result().chains, 2);

  AuditVerifier moved;  // b's first record, claimed by a third chain
  AuditRecord relabelled = b[0];
  relabelled.chain = "gw-c";
  moved.add(a[0]);
  moved.add(relabelled);
  EXPECT_FALSE(moved.result().intact);
  EXPECT_EQ(moved.result().bad_chain, "gw-c");
  EXPECT_NE(moved.result().problem.find("moved"), std::string::npos);

  AuditVerifier gap;  // b's second record deleted
  gap.add(b[0]);
  gap.add(a[0]);
  gap.add(b[2]);
  EXPECT_FALSE(gap.result().intact);
  EXPECT_EQ(gap.result().bad_chain, "gw-b");
  EXPECT_EQ(gap.result().bad_seq, 3);
}

}  // namespace
}  // namespace stargate::server::store_suite
