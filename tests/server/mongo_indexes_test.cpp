// The indexes the MongoDB store makes: the unique one that holds idempotency keys on every
// server, the ones that only answer queries where the server answers queries from indexes
// (MongoDB, FerretDB on PostgreSQL), not where it reads the collection anyway (FerretDB's
// SQLite handler, the tests' server unless STARGATE_TEST_MONGODB_URI names a mongod).
#include <set>

#include "tests/server/store_fixture.hpp"

namespace stargate::server {
namespace {

using store_suite::new_process;

std::set<std::string> index_names(mongo::Client& db, const std::string& collection) {
  std::set<std::string> names;
  auto listed = db.command("listIndexes", collection);
  EXPECT_TRUE(listed) << listed.error();
  if (!listed) return names;
  for (const auto& index : (*listed)["cursor"]["firstBatch"]) {
    names.insert(index.value("name", ""));
  }
  return names;
}

TEST(MongoStoreIndexes, QueryIndexesAreMadeOnlyWhereTheServerAnswersFromThem) {
  test::TempDir dir;
  test::MongoServer mongo(dir.file("mongo"));
  ASSERT_TRUE(mongo.ok()) << mongo.error();
  auto opened = MongoStore::open(mongo.uri());
  ASSERT_TRUE(opened) << opened.error();
  auto& store = **opened;
  ASSERT_TRUE(store.create_process(new_process("acme", "k1")));

  auto raw = mongo::Client::open(mongo.uri());
  ASSERT_TRUE(raw) << raw.error();
  auto plan = (*raw)->command(
      "explain",
      {{"aggregate", "processes"},
       {"cursor", nlohmann::json::object()},
       {"pipeline", nlohmann::json::array({{{"$match", {{"status", "accepted"}}}}})}},
      {{"verbosity", "queryPlanner"}});
  ASSERT_TRUE(plan) << plan.error();
  const bool reads_whole = plan->value("filterPushdown", true) == false;
  if (mongo.own_process()) {
    EXPECT_TRUE(reads_whole) << "FerretDB's SQLite handler: " << *plan;
  }

  const auto processes = index_names(**raw, "processes");
  EXPECT_EQ(processes.count("idempotency_key"), 1u);  // on every server
  const std::set<std::string> for_queries = {"status_lease", "queue", "tenant_seq", "key_at"};
  for (const auto& name : for_queries) {
    EXPECT_EQ(processes.count(name), reads_whole ? 0u : 1u) << name;
  }
  EXPECT_EQ(index_names(**raw, "audit").count("until"), reads_whole ? 0u : 1u);

  // The unique index holds the key either way: the same key again is the same process.
  auto again = store.create_process(new_process("acme", "k1"));
  ASSERT_TRUE(again) << again.error();
  EXPECT_FALSE(again->inserted);
}

// The server down at the store's first write: nothing is made and the write fails with a
// value; once it is back, the next write makes the indexes (the unique one among them) and
// a key sent again is still the same process.
TEST(MongoStoreIndexes, IndexesAreMadeOnceTheServerIsBackAfterAFirstWriteFailed) {
  test::TempDir dir;
  test::MongoServer mongo(dir.file("mongo"));
  ASSERT_TRUE(mongo.ok()) << mongo.error();
  if (!mongo.own_process()) GTEST_SKIP() << "needs a server the test can stop";
  auto opened = MongoStore::open(mongo.uri());
  ASSERT_TRUE(opened) << opened.error();
  auto& store = **opened;
  mongo.stop(true);
  auto during = store.create_process(new_process("acme", "k1"));
  ASSERT_FALSE(during);
  EXPECT_NE(during.error().find("mongodb"), std::string::npos) << during.error();

  ASSERT_TRUE(mongo.start()) << mongo.error();
  ASSERT_TRUE(
      test::wait_until([&] { return bool(store.create_process(new_process("acme", "k1"))); },
                       std::chrono::seconds(30)));
  auto raw = mongo::Client::open(mongo.uri());
  ASSERT_TRUE(raw) << raw.error();
  EXPECT_EQ(index_names(**raw, "processes").count("idempotency_key"), 1u);
  auto again = store.create_process(new_process("acme", "k1"));
  ASSERT_TRUE(again) << again.error();
  EXPECT_FALSE(again->inserted);
}

}  // namespace
}  // namespace stargate::server
