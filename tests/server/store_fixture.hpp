// The store conformance suite's fixture: one store on each backend (the embedded SQLite
// store on a real file; MongoDB, or FerretDB started by the test, alone and with its work
// queue, revocation index and answer cache on a real redis-server), and the raw access to
// its storage that tampering tests need, as an attacker with database access would have.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/store/audit_chain.hpp"
#include "server/store/mongo/mongo_client.hpp"
#include "server/store/mongo/mongo_rows.hpp"
#include "server/store/mongo/mongo_store.hpp"
#include "server/store/redis/redis_answer_cache.hpp"
#include "server/store/redis/redis_changes.hpp"
#include "server/store/redis/redis_client.hpp"
#include "server/store/redis/redis_revocations.hpp"
#include "server/store/redis/redis_work_stream.hpp"
#include "server/store/sqlite/sqlite_store.hpp"
#include "shared/sqlite.hpp"
#include "tests/support/engines.hpp"
#include "tests/support/process.hpp"

namespace stargate::server::store_suite {

inline NewProcess new_process(const std::string& tenant, const std::string& key,
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

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      auto opened = SqliteStore::open(dir_.file("store.db"));
      ASSERT_TRUE(opened) << opened.error();
      store_ = std::move(*opened);
      return;
    }
    mongo_ = std::make_unique<test::MongoServer>(dir_.file("mongo"));
    ASSERT_TRUE(mongo_->ok()) << mongo_->error();
    if (GetParam() == "redis_mongo") {
      redis_server_ = std::make_unique<test::RedisServer>(dir_.file("redis"));
      ASSERT_TRUE(redis_server_->ok()) << redis_server_->error();
      auto endpoint = redis::parse_redis_url(redis_server_->url());
      ASSERT_TRUE(endpoint) << endpoint.error();
      redis_ = std::make_shared<redis::Client>(*endpoint);
    }
    store_ = open_mongo();
    ASSERT_TRUE(store_);
    auto client = mongo::Client::open(mongo_->uri());
    ASSERT_TRUE(client) << client.error();
    raw_ = std::move(*client);
  }

  // Another store on the same data: a second gateway or worker (or an admin command).
  std::unique_ptr<Store> second_store() {
    if (mongo_ == nullptr) {
      auto opened = SqliteStore::open(dir_.file("store.db"));
      EXPECT_TRUE(opened) << opened.error();
      return opened ? std::move(*opened) : nullptr;
    }
    return open_mongo();
  }

  // On redis_mongo with the work queue on a Redis Stream, as the programs have it.
  std::unique_ptr<Store> open_mongo() {
    auto opened = MongoStore::open(mongo_->uri());
    EXPECT_TRUE(opened) << opened.error();
    if (!opened) return nullptr;
    if (redis_) {
      (*opened)->attach_queue(
          std::make_shared<RedisWorkStream>(redis_, (*opened)->worker(), std::chrono::seconds(30)));
      (*opened)->attach_revocations(std::make_shared<RedisRevocations>(redis_));
      (*opened)->attach_answers(std::make_shared<RedisAnswerCache>(redis_));
      (*opened)->attach_changes(std::make_shared<RedisChanges>(redis_));
    }
    return std::move(*opened);
  }

  // The audit record `seq` (of the one chain the test wrote): its text edited, deleted, or
  // (put back) a copy of record 1.
  void edit_audit_record(std::int64_t seq, const std::string& from, const std::string& to) {
    if (raw_ == nullptr) {
      db::Database db(dir_.file("store.db"));
      db.exec("UPDATE audit SET record = replace(record, '" + from + "', '" + to +
              "') WHERE seq = " + std::to_string(seq));
      return;
    }
    edit_audit_block(seq, [&](std::vector<std::string>& lines, std::size_t at) {
      const auto found = lines[at].find(from);
      ASSERT_NE(found, std::string::npos);
      lines[at].replace(found, from.size(), to);
    });
  }
  void delete_audit_record(std::int64_t seq) {
    if (raw_ == nullptr) {
      db::Database db(dir_.file("store.db"));
      db.exec("DELETE FROM audit WHERE seq = " + std::to_string(seq));
      return;
    }
    edit_audit_block(seq, [](std::vector<std::string>& lines, std::size_t at) {
      lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(at));
    });
  }
  void copy_first_audit_record_to(std::int64_t seq) {
    if (raw_ == nullptr) {
      db::Database db(dir_.file("store.db"));
      db.exec("INSERT INTO audit (seq, time, record, prev_hash, hash) SELECT " +
              std::to_string(seq) + ", time, record, prev_hash, hash FROM audit WHERE seq = 1");
      return;
    }
    std::string first;
    ASSERT_TRUE(raw_->find("audit", {{"firstSeq", 1}}, {},
                           [&](nlohmann::json& doc) { first = audit_lines(doc).at(0); }));
    ASSERT_EQ(first.rfind("1\t", 0), 0u) << first;
    first = std::to_string(seq) + first.substr(1);
    // Into the block that holds seq - 1, after it.
    edit_audit_block(seq - 1, [&](std::vector<std::string>& lines, std::size_t at) {
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(at) + 1, first);
    });
  }
  // A block's records, one line each (mongo::rows::audit_block).
  static std::vector<std::string> audit_lines(const nlohmann::json& block) {
    std::vector<std::string> lines;
    std::istringstream in(block.value("records", std::string()));
    for (std::string line; std::getline(in, line);)
      lines.push_back(line);
    return lines;
  }
  // On MongoDB: `change` makes of the lines of the block that holds record `seq` (at
  // index `at`) what is written back over them, as someone with write access could.
  template <typename Change>
  void edit_audit_block(std::int64_t seq, Change change) {
    nlohmann::json block;
    ASSERT_TRUE(raw_->find("audit", {{"firstSeq", {{"$lte", seq}}}, {"lastSeq", {{"$gte", seq}}}},
                           {}, [&](nlohmann::json& doc) { block = doc; }));
    ASSERT_TRUE(block.is_object()) << "no audit block holds record " << seq;
    std::vector<std::string> lines = audit_lines(block);
    const std::string prefix = std::to_string(seq) + "\t";
    std::size_t at = 0;
    while (at < lines.size() && lines[at].rfind(prefix, 0) != 0)
      ++at;
    ASSERT_LT(at, lines.size());
    change(lines, at);
    std::string records;
    for (const std::string& line : lines)
      records += (records.empty() ? "" : "\n") + line;
    ASSERT_TRUE(raw_->write(
        "update", "audit",
        {{"updates", nlohmann::json::array({{{"q", {{"_id", block["_id"]}}},
                                             {"u", {{"$set", {{"records", records}}}}}}})}}));
  }

  test::TempDir dir_;
  std::unique_ptr<test::MongoServer> mongo_;
  std::unique_ptr<test::RedisServer> redis_server_;
  std::shared_ptr<redis::Client> redis_;
  std::unique_ptr<mongo::Client> raw_;
  std::unique_ptr<Store> store_;
};

}  // namespace stargate::server::store_suite
