// The MongoDB store's stock ledger (server/store/mongo/mongo_store_stock.cpp): what a run
// that died between two of its writes leaves, a server killed under an order, what an order
// short of one SKU gives back, the lines an earlier version wrote, and every order adding
// one entry after the last (read by _id, never the whole history).
#include "tests/server/store_fixture.hpp"

namespace stargate::server {
namespace {

using nlohmann::json;

class MongoStock : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mongo_.ok()) << mongo_.error();
    auto opened = MongoStore::open(mongo_.uri());
    ASSERT_TRUE(opened) << opened.error();
    store_ = std::move(*opened);
    auto raw = mongo::Client::open(mongo_.uri());
    ASSERT_TRUE(raw) << raw.error();
    raw_ = std::move(*raw);
  }

  std::vector<json> documents(const std::string& collection, const json& filter = json::object()) {
    std::vector<json> found;
    auto scanned = raw_->find(collection, filter, json::object(),
                              [&](json& doc) { found.push_back(std::move(doc)); });
    EXPECT_TRUE(scanned) << scanned.error();
    return found;
  }

  std::int64_t reserved(const std::string& sku, const std::string& except = "") {
    auto held = store_->reserved_stock({sku}, except);
    EXPECT_TRUE(held) << held.error();
    return held && held->count(sku) != 0 ? held->at(sku) : 0;
  }

  test::TempDir dir_;
  test::MongoServer mongo_{dir_.file("mongo")};
  std::unique_ptr<MongoStore> store_;
  std::unique_ptr<mongo::Client> raw_;
};

// Its worker died after the units were taken, before the hold that says so: the run again
// finds its entry in the ledger and takes nothing twice.
TEST_F(MongoStock, ARunAgainAfterDyingBeforeItsHoldTakesNothingTwice) {
  ASSERT_TRUE(store_->reserve_stock("PROC-1", {{"SKU-A", 3, 5}})->reserved);
  ASSERT_TRUE(
      raw_->write("delete", "stock_holds",
                  {{"deletes", json::array({{{"q", {{"_id", "PROC-1"}}}, {"limit", 1}}})}}));
  // A new store (another worker) reads it all from MongoDB, nothing from memory.
  auto other = MongoStore::open(mongo_.uri());
  ASSERT_TRUE(other) << other.error();
  EXPECT_EQ((*(*other)->reserved_stock({"SKU-A"}, "PROC-1")).count("SKU-A"), 0u);
  auto again = (*other)->reserve_stock("PROC-1", {{"SKU-A", 3, 5}});
  ASSERT_TRUE(again) << again.error();
  EXPECT_TRUE(again->reserved);
  EXPECT_EQ(reserved("SKU-A"), 3);
  EXPECT_EQ(documents("stock_ledger").size(), 1u);
  auto short_of = store_->reserve_stock("PROC-2", {{"SKU-A", 3, 5}});
  ASSERT_TRUE(short_of);
  EXPECT_FALSE(short_of->reserved);
  EXPECT_EQ(short_of->available, 2);
}

// Its worker died after the intent, before the entry: the run again takes the units once.
TEST_F(MongoStock, ARunAgainAfterDyingBeforeItsEntryTakesTheUnitsOnce) {
  ASSERT_TRUE(store_->reserve_stock("PROC-1", {{"SKU-A", 1, 5}})->reserved);
  ASSERT_TRUE(raw_->write("insert", "stock_takes",
                          {{"documents", json::array({{{"_id", "PROC-2\nSKU-A"},
                                                       {"processId", "PROC-2"},
                                                       {"sku", "SKU-A"},
                                                       {"quantity", 2},
                                                       {"after", 1}}})}}));
  EXPECT_EQ(reserved("SKU-A", "PROC-2"), 1);
  ASSERT_TRUE(store_->reserve_stock("PROC-2", {{"SKU-A", 2, 5}})->reserved);
  EXPECT_EQ(reserved("SKU-A"), 3);
  EXPECT_EQ(reserved("SKU-A", "PROC-2"), 1);
}

// Short of its second SKU, an order gives back what it took of the first (an entry of
// negative units) and drops its intents: run again later, it starts afresh.
TEST_F(MongoStock, AnOrderShortOfOneSkuGivesBackTheOthers) {
  ASSERT_TRUE(store_->reserve_stock("PROC-1", {{"SKU-B", 2, 2}})->reserved);
  auto refused = store_->reserve_stock("PROC-2", {{"SKU-A", 4, 10}, {"SKU-B", 1, 2}});
  ASSERT_TRUE(refused) << refused.error();
  EXPECT_FALSE(refused->reserved);
  EXPECT_EQ(refused->sku, "SKU-B");
  EXPECT_EQ(reserved("SKU-A"), 0);
  const auto ledger = documents("stock_ledger", {{"sku", "SKU-A"}});
  ASSERT_EQ(ledger.size(), 2u);
  std::int64_t net = 0;
  for (const auto& entry : ledger) {
    EXPECT_EQ(entry.value("processId", ""), "PROC-2");
    net += entry.value("change", std::int64_t{0});
  }
  EXPECT_EQ(net, 0);
  EXPECT_TRUE(documents("stock_takes", {{"processId", "PROC-2"}}).empty());
  EXPECT_TRUE(documents("stock_holds", {{"_id", "PROC-2"}}).empty());
  // Restocked, the same process (retried) takes both.
  ASSERT_TRUE(store_->reserve_stock("PROC-2", {{"SKU-A", 4, 10}, {"SKU-B", 1, 3}})->reserved);
  EXPECT_EQ(reserved("SKU-A"), 4);
  EXPECT_EQ(reserved("SKU-B"), 3);
}

// A database an earlier version wrote holds its reservations as lines: they still count,
// listed and checked, once the ledger starts from them.
TEST_F(MongoStock, LinesOfAnEarlierVersionStillCount) {
  ASSERT_TRUE(raw_->write("insert", "stock_lines",
                          {{"documents", json::array({{{"_id", "PROC-OLD\nSKU-OLD"},
                                                       {"processId", "PROC-OLD"},
                                                       {"sku", "SKU-OLD"},
                                                       {"quantity", 4}},
                                                      {{"_id", "PROC-OLD2\nSKU-OLD"},
                                                       {"processId", "PROC-OLD2"},
                                                       {"sku", "SKU-OLD"},
                                                       {"quantity", 1}}})}}));
  auto listed = store_->reserved_stock({}, "");
  ASSERT_TRUE(listed) << listed.error();
  EXPECT_EQ(*listed, (std::map<std::string, std::int64_t>{{"SKU-OLD", 5}}));
  auto refused = store_->reserve_stock("PROC-NEW", {{"SKU-OLD", 2, 6}});
  ASSERT_TRUE(refused) << refused.error();
  EXPECT_FALSE(refused->reserved);
  EXPECT_EQ(refused->available, 1);
  ASSERT_TRUE(store_->reserve_stock("PROC-NEW", {{"SKU-OLD", 1, 6}})->reserved);
  EXPECT_EQ(reserved("SKU-OLD"), 6);
  EXPECT_EQ(documents("stock_skus").size(), 1u);
}

// MongoDB killed under an order: the calls fail with a reason (the handler tries again),
// and once it is back the order takes its units once, whatever the first try wrote.
TEST_F(MongoStock, AnOrderCutOffByAKilledServerTakesItsUnitsOnceWhenItIsBack) {
  if (!mongo_.own_process()) GTEST_SKIP() << "needs a server the test can stop";
  ASSERT_TRUE(store_->reserve_stock("PROC-1", {{"SKU-A", 1, 10}})->reserved);
  mongo_.stop(true);
  auto during = store_->reserve_stock("PROC-2", {{"SKU-A", 2, 10}, {"SKU-B", 1, 10}});
  ASSERT_FALSE(during);
  EXPECT_NE(during.error().find("mongodb"), std::string::npos) << during.error();
  EXPECT_FALSE(store_->reserved_stock({"SKU-A"}, "PROC-2"));
  ASSERT_TRUE(mongo_.start()) << mongo_.error();
  Expected<Reservation> after = fail("not tried");
  ASSERT_TRUE(test::wait_until(
      [&] {
        after = store_->reserve_stock("PROC-2", {{"SKU-A", 2, 10}, {"SKU-B", 1, 10}});
        return bool(after);
      },
      std::chrono::seconds(20)))
      << after.error();
  EXPECT_TRUE(after->reserved);
  EXPECT_EQ(reserved("SKU-A"), 3);
  EXPECT_EQ(reserved("SKU-B"), 1);
  EXPECT_EQ(reserved("SKU-A", "PROC-2"), 1);
}

// An order reads the ledger by _id from the last entry its store saw, never the history:
// 120 orders leave 120 entries, each the one after the last, and a store that saw none
// finds the last one.
TEST_F(MongoStock, EveryOrderAddsOneEntryAfterTheLast) {
  auto other = MongoStore::open(mongo_.uri());
  ASSERT_TRUE(other) << other.error();
  for (int i = 1; i <= 120; ++i) {
    MongoStore& store = i % 3 == 0 ? **other : *store_;
    auto outcome = store.reserve_stock("PROC-" + std::to_string(i), {{"SKU-A", 1, 1000}});
    ASSERT_TRUE(outcome) << outcome.error();
    ASSERT_TRUE(outcome->reserved);
  }
  const auto ledger = documents("stock_ledger");
  ASSERT_EQ(ledger.size(), 120u);
  std::set<std::int64_t> numbers;
  for (const auto& entry : ledger) {
    const auto n = entry.value("n", std::int64_t{0});
    numbers.insert(n);
    EXPECT_EQ(entry.value("reserved", std::int64_t{0}), n);
    EXPECT_EQ(entry.value("_id", ""), "SKU-A\n" + std::to_string(n));
  }
  EXPECT_EQ(numbers.size(), 120u);
  EXPECT_EQ(*numbers.begin(), 1);
  EXPECT_EQ(*numbers.rbegin(), 120);
  auto fresh = MongoStore::open(mongo_.uri());
  ASSERT_TRUE(fresh) << fresh.error();
  EXPECT_EQ((*(*fresh)->reserved_stock({"SKU-A"}, ""))["SKU-A"], 120);
}

}  // namespace
}  // namespace stargate::server
