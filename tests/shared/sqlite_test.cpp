// Tests of shared/sqlite.cpp on real database files.
#include "shared/sqlite.hpp"

#include <gtest/gtest.h>

#include "tests/support/process.hpp"

namespace stargate::db {
namespace {

TEST(Sqlite, CommitsSurviveReopening) {
  test::TempDir dir;
  const auto path = dir.file("t.db");
  {
    Database db(path);
    db.exec("CREATE TABLE t (a INTEGER, b TEXT)");
    Transaction tx(db);
    db.prepare("INSERT INTO t VALUES (?, ?)").bind(1, 7).bind(2, "seven").run();
    tx.commit();
  }
  Database db(path);
  auto stmt = db.prepare("SELECT a, b FROM t");
  ASSERT_TRUE(stmt.step());
  EXPECT_EQ(stmt.integer(0), 7);
  EXPECT_EQ(stmt.text(1), "seven");
  auto mode = db.prepare("PRAGMA journal_mode");
  mode.step();
  EXPECT_EQ(mode.text(0), "wal");
}

TEST(Sqlite, UncommittedTransactionsRollBack) {
  test::TempDir dir;
  Database db(dir.file("t.db"));
  db.exec("CREATE TABLE t (a INTEGER)");
  {
    Transaction tx(db);
    db.prepare("INSERT INTO t VALUES (1)").run();
  }
  auto count = db.prepare("SELECT count(*) FROM t");
  count.step();
  EXPECT_EQ(count.integer(0), 0);
}

TEST(Sqlite, ErrorsThrowWithSqlitesMessage) {
  test::TempDir dir;
  Database db(dir.file("t.db"));
  EXPECT_THROW(db.prepare("SELEKT 1"), DbError);
  try {
    db.exec("INSERT INTO missing VALUES (1)");
    FAIL();
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.what()).find("no such table"), std::string::npos);
  }
  EXPECT_THROW(Database("/nonexistent/dir/t.db"), DbError);
}

TEST(Sqlite, UserVersion) {
  test::TempDir dir;
  Database db(dir.file("t.db"));
  EXPECT_EQ(db.user_version(), 0);
  db.set_user_version(3);
  EXPECT_EQ(db.user_version(), 3);
}

}  // namespace
}  // namespace stargate::db
