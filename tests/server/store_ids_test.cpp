// The store conformance suite, process ids: of the day, one after another from one
// gateway, never repeated across gateways taking blocks at once (every backend).
#include "tests/server/store_fixture.hpp"

namespace stargate::server::store_suite {
namespace {

TEST_P(StoreTest, CreatesProcessesWithDailyIds) {
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

// One gateway alone numbers its processes one after another, past the blocks of ids it
// takes (the next one taken ahead, while the last is used), and starts again at 1 on a new
// day, whatever it had taken for the day before.
TEST_P(StoreTest, IdsOfOneStoreFollowEachOtherAcrossBlocksAndDays) {
  for (int i = 1; i <= 250; ++i) {
    auto created = store_->create_process(new_process("acme", ""));
    ASSERT_TRUE(created) << created.error();
    const auto number = std::to_string(i);
    EXPECT_EQ(created->process.view.process_id,
              "PROC-20260114-" + std::string(5 - number.size(), '0') + number);
  }
  auto next_day = new_process("acme", "");
  next_day.now += std::chrono::hours(24);
  EXPECT_EQ(store_->create_process(next_day)->process.view.process_id, "PROC-20260115-00001");
  EXPECT_EQ(store_->create_process(next_day)->process.view.process_id, "PROC-20260115-00002");
}

// Several gateways at once, each taking blocks of ids as it uses them up: no id is handed
// out twice, and every one is of the day.
TEST_P(StoreTest, IdsNeverRepeatAcrossStoresTakingBlocksAtOnce) {
  std::vector<std::unique_ptr<Store>> stores;
  for (int s = 0; s < 3; ++s)
    stores.push_back(second_store());
  std::mutex mutex;
  std::vector<std::string> ids;
  std::vector<std::thread> threads;
  for (std::size_t s = 0; s < stores.size(); ++s) {
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, s] {
        for (int i = 0; i < 130; ++i) {
          auto created = stores[s]->create_process(new_process("acme", ""));
          ASSERT_TRUE(created) << created.error();
          std::lock_guard lock(mutex);
          ids.push_back(created->process.view.process_id);
        }
      });
    }
  }
  for (auto& thread : threads)
    thread.join();
  ASSERT_EQ(ids.size(), 780u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  for (const auto& id : ids)
    EXPECT_EQ(id.rfind("PROC-20260114-", 0), 0u) << id;
}

}  // namespace
}  // namespace stargate::server::store_suite
