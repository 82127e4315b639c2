// The store conformance suite, the audit trail: one chain whatever the number of writers,
// and every edit, deletion or copy of a record found (see store_test.cpp).
#include "tests/server/store_fixture.hpp"

namespace stargate::server::store_suite {
namespace {

// Several writers append to one chain, which stays whole and in order.
TEST_P(StoreTest, TwoWritersKeepOneAuditChain) {
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
}

// A writer whose view of the chain's head is old (the other wrote many records since)
// chains after the newest record.
TEST_P(StoreTest, AWriterCatchesUpWithTheOthersRecords) {
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

}  // namespace
}  // namespace stargate::server::store_suite
