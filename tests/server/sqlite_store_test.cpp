// Tests of server/store/sqlite/sqlite_store.cpp's own schema and its upgrades (the ports'
// behaviour is in store_test.cpp, for every backend).
#include "server/store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>

#include "shared/sqlite.hpp"
#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

// A database of an earlier version (4, before stock reservations) keeps its processes and
// clients and gains the new tables and columns when a newer server opens it.
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
    ASSERT_TRUE(store->add_client({"sgc_1", "acme", "h1", {"order"}, now_utc(), false}));
  }
  {
    db::Database db(dir.file("store.db"));
    db.exec(
        "DROP TABLE stock_reservations; DROP TABLE stock_reserved; DROP TABLE change_feed; "
        "DROP INDEX processes_changes; ALTER TABLE processes DROP COLUMN change_seq; "
        "ALTER TABLE clients DROP COLUMN previous_secret_hash; "
        "ALTER TABLE clients DROP COLUMN previous_secret_until;");
    db.set_user_version(4);
  }
  auto store = SqliteStore::open(dir.file("store.db"));
  ASSERT_TRUE(store) << store.error();
  EXPECT_TRUE((**store).get_process("acme", id)->has_value());
  // Its clients can be rotated.
  ASSERT_TRUE((**store).rotate_client_secret("sgc_1", "h2", now_utc() + std::chrono::hours(1)));
  EXPECT_EQ((**(**store).find_client("sgc_1")).previous_secret_hash, "h1");
  // The change feed starts after the processes there were.
  auto head = (**store).changes_after({"acme", "", 10});
  ASSERT_TRUE(head) << head.error();
  EXPECT_EQ(head->cursor.substr(head->cursor.find('-')), "-1");
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
