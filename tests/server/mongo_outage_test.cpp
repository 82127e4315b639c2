// MongoDB (FerretDB started by the test) going away under a store and coming back: every
// call fails with a value, none hangs past its timeout, and the same store works again
// without being reopened; idempotency keys stay right across the outage.
#include <csignal>
#include <fstream>

#include "tests/server/store_fixture.hpp"

namespace stargate::server {
namespace {

using store_suite::new_process;

// The state letter of process `pid` (R, S, T for stopped, ...), '?' when it is gone.
char process_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
}

// A FerretDB of the test's own (which it can stop) and a store on it with one process.
class MongoStoreOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mongo.ok()) << mongo.error();
    if (!mongo.own_process()) GTEST_SKIP() << "needs a server the test can stop";
    auto opened = MongoStore::open(mongo.uri());
    ASSERT_TRUE(opened) << opened.error();
    store = std::move(*opened);
    ASSERT_TRUE(store->check_writable());
    ASSERT_TRUE(store->create_process(new_process("acme", "before")));
  }
  // The server started again, and the store (not reopened) writing to it.
  void start_again() {
    ASSERT_TRUE(mongo.start()) << mongo.error();
    ASSERT_TRUE(
        test::wait_until([&] { return bool(store->check_writable()); }, std::chrono::seconds(30)));
  }
  test::TempDir dir;
  test::MongoServer mongo{dir.file("mongo")};
  std::unique_ptr<MongoStore> store;
};

// MongoDB gone: every call fails with a value (no hang, no exception), and the same store
// works again once the server is back, without being reopened.
TEST_F(MongoStoreOutage, CallsFailWhileTheServerIsDownAndWorkOnceItIsBack) {
  mongo.stop(true);
  auto probe = store->check_writable();
  EXPECT_FALSE(probe);
  EXPECT_NE(probe.error().find("mongodb"), std::string::npos) << probe.error();
  EXPECT_FALSE(store->create_process(new_process("acme", "during")));
  EXPECT_FALSE(store->claim_next(now_utc()));

  ASSERT_NO_FATAL_FAILURE(start_again());
  auto after = store->create_process(new_process("acme", "during"));
  ASSERT_TRUE(after) << after.error();
  EXPECT_TRUE(after->inserted);
  auto counts = store->process_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->by_status["accepted"], 2);
}

// Keys across outages: a prune while MongoDB is down fails with a value and moves no cut
// (the key is still held once the server is back); a request that brings a key the cut
// passed while the server is down fails with a value, and once it is back it lets the key
// go and makes one new process, which later requests replay. The old process stays.
TEST_F(MongoStoreOutage, KeysAreForgottenOnceAcrossOutages) {
  auto later = new_process("acme", "before");
  later.now += std::chrono::minutes(1);
  mongo.stop(true);
  auto pruned = store->prune_idempotency_keys(later.now);
  ASSERT_FALSE(pruned);
  EXPECT_NE(pruned.error().find("mongodb"), std::string::npos) << pruned.error();
  ASSERT_NO_FATAL_FAILURE(start_again());
  auto held = store->create_process(later);
  ASSERT_TRUE(held) << held.error();
  EXPECT_FALSE(held->inserted) << "a prune that failed forgot the key";
  const std::string old_id = held->process.view.process_id;

  pruned = store->prune_idempotency_keys(later.now);
  ASSERT_TRUE(pruned) << pruned.error();
  EXPECT_EQ(*pruned, 1u);
  mongo.stop(true);
  auto during = store->create_process(later);
  ASSERT_FALSE(during);
  EXPECT_NE(during.error().find("mongodb"), std::string::npos) << during.error();
  ASSERT_NO_FATAL_FAILURE(start_again());
  auto fresh = store->create_process(later);
  ASSERT_TRUE(fresh) << fresh.error();
  EXPECT_TRUE(fresh->inserted);
  EXPECT_NE(fresh->process.view.process_id, old_id);
  auto replay = store->create_process(later);
  ASSERT_TRUE(replay) << replay.error();
  EXPECT_FALSE(replay->inserted);
  EXPECT_EQ(replay->process.view.process_id, fresh->process.view.process_id);
  auto old = store->get_process("acme", old_id);
  ASSERT_TRUE(old) << old.error();
  EXPECT_TRUE(old->has_value());
  auto counts = store->process_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->by_status["accepted"], 2);
}

// MongoDB that accepts connections but never answers (stopped with SIGSTOP; a swapping or
// partitioned server looks the same): calls fail after the driver's socket timeout (5 s),
// not the 20 s they used to, and work again as soon as it answers.
TEST_F(MongoStoreOutage, AServerThatStopsAnsweringCostsSecondsNotMinutes) {
  ASSERT_GT(mongo.pid(), 0);
  ASSERT_EQ(::kill(mongo.pid(), SIGSTOP), 0);
  ASSERT_TRUE(
      test::wait_until([&] { return process_state(mongo.pid()) == 'T'; }, std::chrono::seconds(2)))
      << "FerretDB (pid " << mongo.pid() << ") did not stop: state " << process_state(mongo.pid());
  const auto sent = std::chrono::steady_clock::now();
  auto during = store->create_process(new_process("acme", "during"));
  const auto waited = std::chrono::steady_clock::now() - sent;
  ::kill(mongo.pid(), SIGCONT);
  ASSERT_FALSE(during);
  EXPECT_NE(during.error().find("mongodb"), std::string::npos) << during.error();
  EXPECT_LT(waited, std::chrono::seconds(15)) << "a silent server held the call past its timeout";

  ASSERT_TRUE(
      test::wait_until([&] { return bool(store->check_writable()); }, std::chrono::seconds(30)));
  auto after = store->create_process(new_process("acme", "after"));
  ASSERT_TRUE(after) << after.error();
  EXPECT_TRUE(after->inserted);
}

}  // namespace
}  // namespace stargate::server
