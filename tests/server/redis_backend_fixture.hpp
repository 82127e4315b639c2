// The fixture of the tests of what the scale-out backend keeps in Redis: a real
// redis-server and a MongoDB-compatible server started for each test, and stores on them as
// the gateways and workers have them.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "server/store/mongo/mongo_store.hpp"
#include "server/store/redis/redis_answer_cache.hpp"
#include "server/store/redis/redis_changes.hpp"
#include "server/store/redis/redis_client.hpp"
#include "server/store/redis/redis_revocations.hpp"
#include "server/store/redis/redis_work_stream.hpp"
#include "tests/support/engines.hpp"
#include "tests/support/process.hpp"

namespace stargate::server {

using namespace std::chrono_literals;

class RedisBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mongo_ = std::make_unique<test::MongoServer>(dir_.file("mongo"));
    ASSERT_TRUE(mongo_->ok()) << mongo_->error();
    redis_server_ = std::make_unique<test::RedisServer>(dir_.file("redis"));
    ASSERT_TRUE(redis_server_->ok()) << redis_server_->error();
    auto endpoint = redis::parse_redis_url(redis_server_->url());
    ASSERT_TRUE(endpoint) << endpoint.error();
    redis_ = std::make_shared<redis::Client>(*endpoint);
  }

  // A gateway or worker: a store of its own with a queue of its own on the shared engines
  // (by default this test's deployment: its MongoDB database, its Redis client).
  std::unique_ptr<MongoStore> open(Duration lease) { return open(lease, redis_, mongo_->uri()); }
  std::unique_ptr<MongoStore> open(Duration lease, const std::shared_ptr<redis::Client>& redis,
                                   const std::string& mongo_uri) {
    auto opened = MongoStore::open(mongo_uri, lease);
    EXPECT_TRUE(opened) << opened.error();
    if (!opened) return nullptr;
    (*opened)->attach_queue(std::make_shared<RedisWorkStream>(redis, (*opened)->worker(), lease));
    (*opened)->attach_revocations(std::make_shared<RedisRevocations>(redis));
    (*opened)->attach_answers(std::make_shared<RedisAnswerCache>(redis));
    (*opened)->attach_changes(std::make_shared<RedisChanges>(redis, feed_retention_));
    return std::move(*opened);
  }

  std::string submit(Store& store, const std::string& key) {
    NewProcess process;
    process.tenant = "acme";
    process.client_id = "client-acme";
    process.request.client_process_id = "cp-" + key;
    process.request.process_type = "order";
    process.request.data = {{"orderId", key}};
    process.request.idempotency_key = key;
    process.request_hash = "h-" + key;
    process.now = now_utc();
    auto created = store.create_process(process);
    EXPECT_TRUE(created) << created.error();
    return created ? created->process.view.process_id : "";
  }

  // What `worker` claims and completes until it has run `count` processes (or `limit` is
  // over): their ids.
  std::set<std::string> run_until(Store& worker, std::size_t count, Duration limit) {
    std::set<std::string> run;
    test::wait_until(
        [&] {
          auto next = worker.claim_next(now_utc());
          if (next && next->has_value()) {
            run.insert((*next)->view.process_id);
            EXPECT_TRUE(worker.complete((*next)->view.process_id, {{"ok", true}}, now_utc()));
          }
          return run.size() >= count;
        },
        limit);
    return run;
  }

  // kill -9 of a worker, as the queue sees it: `dead` claimed the process `id` (submitted
  // through `gateway`) and never renews it; `alive` is another worker. All with `lease`.
  struct DeadWorker {
    std::unique_ptr<MongoStore> gateway, dead, alive;
    std::string id;
  };
  DeadWorker a_dead_worker(Duration lease) {
    DeadWorker made{open(lease), open(lease), open(lease), ""};
    made.id = submit(*made.gateway, "k1");
    auto first = made.dead->claim_next(now_utc());
    EXPECT_TRUE(first && first->has_value());
    if (first && first->has_value()) {
      EXPECT_EQ((*first)->view.process_id, made.id);
    }
    return made;
  }

  std::int64_t redis_integer(const std::vector<std::string>& command) {
    auto reply = redis_->command(command);
    EXPECT_TRUE(reply) << reply.error();
    return reply ? reply->integer : -1;
  }

  Duration feed_retention_ = std::chrono::duration_cast<Duration>(RedisChanges::kRetention);
  test::TempDir dir_;
  std::unique_ptr<test::MongoServer> mongo_;
  std::unique_ptr<test::RedisServer> redis_server_;
  std::shared_ptr<redis::Client> redis_;
};

}  // namespace stargate::server
