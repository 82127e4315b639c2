// What the scale-out backend keeps in a real redis-server beside its record in MongoDB (or
// FerretDB), both started by the test. The work queue: the failures users of Redis queues
// meet most (entries of a dead worker never taken over, a slow worker's job run twice,
// memory that grows with finished jobs, workers that stop after Redis lost its data or
// restarted), each provoked for real. The revocation index: seen by every gateway at once,
// and never trusted beyond what the record says when Redis lost or missed something.
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "server/store/audit_chain.hpp"
#include "server/store/mongo/mongo_client.hpp"

#include "tests/server/redis_backend_fixture.hpp"

namespace stargate::server {
namespace {

using nlohmann::json;

TEST_F(RedisBackendTest, FinishedEntriesAreTrimmedSoMemoryStaysBounded) {
  auto gateway = open(30s);
  auto worker = open(30s);
  for (int i = 0; i < 20; ++i)
    ASSERT_FALSE(submit(*gateway, "k" + std::to_string(i)).empty());
  gateway->record_acceptances();  // the entries follow the answers
  EXPECT_EQ(redis_integer({"XLEN", "stargate:queue"}), 20);
  for (int i = 0; i < 20; ++i) {
    auto next = worker->claim_next(now_utc());
    ASSERT_TRUE(next && next->has_value()) << i;
    const auto& id = (*next)->view.process_id;
    if (i % 2 == 0) {
      ASSERT_TRUE(worker->complete(id, {{"ok", true}}, now_utc()));
    } else {
      ASSERT_TRUE(worker->fail_process(id, {"E", "m", {}}, false, now_utc()));
    }
  }
  EXPECT_EQ(redis_integer({"XLEN", "stargate:queue"}), 0);
  EXPECT_EQ(redis_integer({"SCARD", "stargate:queue:covered"}), 0);
  auto pending = redis_->command({"XPENDING", "stargate:queue", "workers"});
  ASSERT_TRUE(pending) << pending.error();
  ASSERT_FALSE(pending->elements.empty());
  EXPECT_EQ(pending->elements[0].integer, 0);
}

// kill -9 of a worker, as the queue sees it: the entry stays pending under its name and
// nobody renews it. Another worker takes it over once the lease has run out, not before.
TEST_F(RedisBackendTest, ADeadWorkersEntryIsTakenOverAfterTheLease) {
  auto [gateway, dead, alive, id] = a_dead_worker(2s);
  ASSERT_FALSE(HasFailure());
  const auto claimed_at = std::chrono::steady_clock::now();
  std::optional<ProcessRecord> taken;
  ASSERT_TRUE(test::wait_until(
      [&] {
        auto next = alive->claim_next(now_utc());
        if (next && next->has_value()) taken = **next;
        return taken.has_value();
      },
      15s));
  EXPECT_GE(std::chrono::steady_clock::now() - claimed_at, 2s);
  EXPECT_EQ(taken->view.process_id, id);
  // Only the worker that holds it now records progress and the outcome.
  ASSERT_TRUE(alive->update_progress(id, 30, "alive's step", now_utc()));
  ASSERT_TRUE(dead->update_progress(id, 60, "dead's step", now_utc()));
  ASSERT_TRUE(dead->renew_lease(id, now_utc()));
  auto seen = gateway->get_process("acme", id);
  ASSERT_TRUE(seen && seen->has_value());
  EXPECT_EQ((*seen)->view.progress, 30);
  EXPECT_EQ((*seen)->view.current_step, "alive's step");
  EXPECT_FALSE(dead->holds(id).value_or(true));
  EXPECT_TRUE(alive->holds(id).value_or(false));
  EXPECT_FALSE(dead->complete(id, {{"by", "dead"}}, now_utc()));
  ASSERT_TRUE(alive->complete(id, {{"by", "alive"}}, now_utc()));
  EXPECT_EQ(redis_integer({"XLEN", "stargate:queue"}), 0);
}

// The engine reads the clock before it asks for work, and a sweep or the wait for an entry
// can come in between: an entry taken over once its lease ran out is judged by the time it
// came, not by that older reading, else it would be spent as "still leased" and the process
// would wait a lease more for the sweeper (seen as a takeover of twice the lease).
TEST_F(RedisBackendTest, AnEntryTakenOverIsJudgedByTheTimeItCame) {
  auto [gateway, dead, alive, id] = a_dead_worker(2s);
  ASSERT_FALSE(HasFailure());
  const auto read_early = now_utc();  // the lease has 2 s to go
  std::this_thread::sleep_for(2500ms);
  auto taken = alive->claim_next(read_early);
  ASSERT_TRUE(taken) << taken.error();
  ASSERT_TRUE(taken->has_value()) << "the dead worker's entry was spent, not taken over";
  EXPECT_EQ((*taken)->view.process_id, id);
  EXPECT_TRUE(alive->holds(id).value_or(false));
}

// A slow worker that renews its lease keeps its process: nobody runs it a second time.
TEST_F(RedisBackendTest, ASlowWorkerThatRenewsKeepsItsProcess) {
  auto gateway = open(1500ms);
  auto slow = open(1500ms);
  auto other = open(1500ms);
  const auto id = submit(*gateway, "k1");
  auto first = slow->claim_next(now_utc());
  ASSERT_TRUE(first && first->has_value());
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(slow->renew_lease(id, now_utc()));
    auto next = other->claim_next(now_utc());  // waits up to half a second
    ASSERT_TRUE(next) << next.error();
    EXPECT_FALSE(next->has_value()) << "taken while its worker renewed the lease";
  }
  ASSERT_TRUE(slow->complete(id, {{"ok", true}}, now_utc()));
}

// Redis restarted without its data (or flushed): the sweeper puts back an entry for every
// queued process, and the workers carry on without a restart.
TEST_F(RedisBackendTest, WorkQueuedBeforeRedisLostItsDataIsStillRun) {
  auto gateway = open(1s);
  auto worker = open(1s);
  std::set<std::string> submitted;
  for (int i = 0; i < 3; ++i)
    submitted.insert(submit(*gateway, "k" + std::to_string(i)));
  ASSERT_TRUE(redis_->command({"FLUSHALL"}));
  EXPECT_EQ(run_until(*worker, submitted.size(), 20s), submitted);
}

// A gateway killed between a process's insert and its audit record and queue entry (here:
// the document of such a process written straight into MongoDB, accepted 20 s ago): the
// sweeper queues it, finds its acceptance missing from the audit and records it, marked
// late, once; a process swept the same way whose acceptance is recorded gets no second one,
// also where the records of its block are not in the order of their times (the acceptances
// of concurrent requests go in the order their inserts return).
TEST_F(RedisBackendTest, AnAcceptanceTheGatewayDidNotRecordIsRecordedLateOnce) {
  auto gateway = open(1s);
  auto worker = open(1s);
  NewProcess process;
  process.tenant = "acme";
  process.request.client_process_id = "cp-k1";
  process.request.process_type = "order";
  process.now = now_utc() - 19s;
  auto first = gateway->create_process(process);
  ASSERT_TRUE(first) << first.error();
  process.request.client_process_id = "cp-k0";
  process.now = now_utc() - 20s;  // accepted 20 s ago, its record with it (after a later one)
  auto created = gateway->create_process(process);
  ASSERT_TRUE(created) << created.error();
  gateway->record_acceptances();  // their records, in one block, and entries
  const std::string later_timed = first->process.view.process_id;
  const std::string recorded = created->process.view.process_id;
  auto raw = mongo::Client::open(mongo_->uri());
  ASSERT_TRUE(raw) << raw.error();
  json doc;
  ASSERT_TRUE((*raw)->find("processes", {{"_id", recorded}}, {}, [&](json& d) { doc = d; }));
  ASSERT_TRUE(doc.is_object());
  const std::string lost = "PROC-20991231-99999";
  const auto accepted_at = to_unix_ms(now_utc() - 20s) + 1;
  doc["_id"] = lost;
  doc["claim"] = lost;
  doc["seq"] = doc.value("seq", std::int64_t{0}) + 1;
  doc["createdAt"] = doc["updatedAt"] = accepted_at;
  doc.erase("requestHash");
  doc.erase("keyAt");
  auto inserted = (*raw)->write("insert", "processes", {{"documents", json::array({doc})}});
  ASSERT_TRUE(inserted && !inserted->duplicate_key);
  ASSERT_TRUE(redis_->command({"FLUSHALL"}));  // neither has a queue entry: both are swept

  EXPECT_EQ(run_until(*worker, 3, 20s), (std::set<std::string>{later_timed, recorded, lost}));
  std::map<std::string, int> acceptances;
  int late = 0;
  ASSERT_TRUE(gateway->scan_audit(TimePoint{}, [&](const AuditRecord& r) {
    const auto record = json::parse(r.record);
    if (record.value("to", "") != "accepted") return;
    ++acceptances[record.value("processId", "")];
    if (record.value("recordedLate", false)) {
      ++late;
      EXPECT_EQ(record.value("processId", ""), lost);
      EXPECT_EQ(record.value("acceptedAt", ""), format_timestamp(from_unix_ms(accepted_at)));
    }
  }));
  EXPECT_EQ(acceptances, (std::map<std::string, int>{{later_timed, 1}, {recorded, 1}, {lost, 1}}));
  EXPECT_EQ(late, 1);
  auto check = verify_audit(*gateway);
  ASSERT_TRUE(check) << check.error();
  EXPECT_TRUE(check->intact) << check->problem;
}

// A gateway answers once the process is in MongoDB; its acceptance's record and queue entry
// follow from a thread of its own. A gateway that stops writes those still waiting, so a
// stop leaves nothing for the sweeper: every process is recorded once and queued once.
TEST_F(RedisBackendTest, AcceptancesWaitingAtAStopAreRecordedAndQueued) {
  auto gateway = open(30s);
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::set<std::string> ids;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const auto id = submit(*gateway, "k" + std::to_string(t) + "-" + std::to_string(i));
        std::lock_guard lock(mutex);
        ids.insert(id);
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  gateway.reset();
  ASSERT_EQ(ids.size(), 200u);
  EXPECT_EQ(redis_integer({"XLEN", "stargate:queue"}), 200);
  EXPECT_EQ(redis_integer({"SCARD", "stargate:queue:covered"}), 200);
  auto reader = open(30s);
  std::map<std::string, int> acceptances;
  ASSERT_TRUE(reader->scan_audit(TimePoint{}, [&](const AuditRecord& r) {
    const auto record = json::parse(r.record);
    if (record.value("to", "") == "accepted") ++acceptances[record.value("processId", "")];
  }));
  EXPECT_EQ(acceptances.size(), 200u);
  for (const auto& [id, n] : acceptances) {
    EXPECT_EQ(n, 1) << id;
    EXPECT_EQ(ids.count(id), 1u) << id;
  }
  auto check = verify_audit(*reader);
  ASSERT_TRUE(check) << check.error();
  EXPECT_TRUE(check->intact) << check->problem;
}

// Redis down: submissions still land in MongoDB (their entries are missing), workers claim
// nothing and say why; once Redis is back (empty), everything submitted is run.
TEST_F(RedisBackendTest, AWorkerWithoutRedisClaimsNothingAndResumesAfterwards) {
  auto gateway = open(1s);
  auto worker = open(1s);
  const auto before = submit(*gateway, "before");
  redis_server_->stop(true);
  const auto during = submit(*gateway, "during");
  ASSERT_FALSE(during.empty());
  auto claim = worker->claim_next(now_utc());
  ASSERT_FALSE(claim);
  EXPECT_NE(claim.error().find("redis"), std::string::npos) << claim.error();
  ASSERT_TRUE(redis_server_->start()) << redis_server_->error();
  EXPECT_EQ(run_until(*worker, 2, 30s), (std::set<std::string>{before, during}));
}

// A completed process read once is answered from Redis by every gateway afterwards, to
// its own tenant only; the record of a process not yet completed is never cached.
TEST_F(RedisBackendTest, CompletedAnswersAreSharedThroughRedis) {
  auto gateway = open(30s);
  auto other = open(30s);
  auto worker = open(30s);
  const auto id = submit(*gateway, "k1");
  ASSERT_TRUE((*other->get_process("acme", id)).has_value());
  EXPECT_EQ(redis_integer({"EXISTS", "stargate:done:" + id}), 0);  // accepted: not cached
  auto next = worker->claim_next(now_utc());
  ASSERT_TRUE(next && next->has_value());
  ASSERT_TRUE(worker->complete(id, {{"shipped", 3}}, now_utc()));
  auto first = gateway->get_process("acme", id);
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ(redis_integer({"EXISTS", "stargate:done:" + id}), 1);
  EXPECT_GT(redis_integer({"PTTL", "stargate:done:" + id}), 0);  // bounded: it expires
  auto cached = other->get_process("acme", id);
  ASSERT_TRUE(cached && cached->has_value());
  EXPECT_EQ((*cached)->view.status, ProcessStatus::kCompleted);
  EXPECT_EQ((*cached)->view.result, (nlohmann::json{{"shipped", 3}}));
  EXPECT_FALSE(other->get_process("globex", id)->has_value());
  // A cached copy that was tampered with into something else is not used (by a gateway
  // that has not read the process yet, so has no copy in its memory).
  ASSERT_TRUE(redis_->command({"SET", "stargate:done:" + id, "{not json"}));
  auto third = open(30s);
  auto from_record = third->get_process("acme", id);
  ASSERT_TRUE(from_record && from_record->has_value());
  EXPECT_EQ((*from_record)->view.status, ProcessStatus::kCompleted);
}

// Two deployments on one Redis database, told apart by [redis] prefix: neither takes the
// other's queue entries nor reads the other's cached answers (their process ids are the
// same: each has a database of its own in MongoDB), and every key either one makes begins
// with its prefix.
TEST_F(RedisBackendTest, DeploymentsWithPrefixesOfTheirOwnShareOneRedisDatabase) {
  const auto client_with = [&](const std::string& prefix) {
    auto endpoint = redis::parse_redis_url(redis_server_->url());
    EXPECT_TRUE(endpoint) << endpoint.error();
    endpoint->prefix = prefix;
    return std::make_shared<redis::Client>(*endpoint);
  };
  const std::string east_uri = mongo_->uri();
  const auto options = east_uri.find('?');
  const std::string west_uri =
      options == std::string::npos
          ? east_uri + "_west"
          : east_uri.substr(0, options) + "_west" + east_uri.substr(options);
  auto east = client_with("east"), west = client_with("west.prod");
  auto east_gateway = open(30s, east, east_uri), east_worker = open(30s, east, east_uri);
  auto west_gateway = open(30s, west, west_uri), west_worker = open(30s, west, west_uri);
  std::set<std::string> east_ids;
  for (int i = 0; i < 3; ++i)
    east_ids.insert(submit(*east_gateway, "k" + std::to_string(i)));
  east_gateway->record_acceptances();
  EXPECT_EQ(redis_integer({"XLEN", "east:queue"}), 3);
  auto nothing = west_worker->claim_next(now_utc());
  ASSERT_TRUE(nothing) << nothing.error();
  EXPECT_FALSE(nothing->has_value());
  EXPECT_EQ(redis_integer({"XLEN", "east:queue"}), 3);  // left for east's workers
  EXPECT_EQ(run_until(*east_worker, 3, 10s), east_ids);
  for (const auto& id : east_ids)
    ASSERT_TRUE((*east_gateway->get_process("acme", id)).has_value());  // cached in Redis
  // West's first process has the id of east's first, completed and cached: west reads its own.
  const auto west_id = submit(*west_gateway, "k0");
  ASSERT_EQ(east_ids.count(west_id), 1u);
  auto own = west_gateway->get_process("acme", west_id);
  ASSERT_TRUE(own && own->has_value());
  EXPECT_EQ((*own)->view.status, ProcessStatus::kAccepted);
  west_gateway->record_acceptances();
  EXPECT_EQ(run_until(*west_worker, 1, 10s), std::set<std::string>{west_id});
  auto keys = redis_->command({"KEYS", "*"});
  ASSERT_TRUE(keys) << keys.error();
  EXPECT_FALSE(keys->elements.empty());
  for (const auto& key : keys->elements) {
    EXPECT_TRUE(key.text.rfind("east:", 0) == 0 || key.text.rfind("west.prod:", 0) == 0)
        << key.text;
  }
}

// A gateway keeps the completed processes it read last in its memory: polling one costs
// no round trip, and is answered even while Redis and MongoDB are both down. A process not
// completed is always read again, so it is never answered stale.
TEST_F(RedisBackendTest, CompletedAnswersAreKeptInTheGatewaysMemory) {
  if (!mongo_->own_process()) GTEST_SKIP() << "needs a MongoDB the test can stop";
  auto gateway = open(30s);
  auto worker = open(30s);
  const auto done = submit(*gateway, "done");
  const auto pending = submit(*gateway, "pending");
  auto next = worker->claim_next(now_utc());
  ASSERT_TRUE(next && next->has_value());
  ASSERT_EQ((*next)->view.process_id, done);
  ASSERT_TRUE(worker->complete(done, {{"shipped", 1}}, now_utc()));
  ASSERT_TRUE(gateway->get_process("acme", done)->has_value());
  ASSERT_TRUE(gateway->get_process("acme", pending)->has_value());
  redis_server_->stop(true);
  mongo_->stop(true);
  auto kept = gateway->get_process("acme", done);
  ASSERT_TRUE(kept) << kept.error();
  ASSERT_TRUE(kept->has_value());
  EXPECT_EQ((*kept)->view.status, ProcessStatus::kCompleted);
  EXPECT_EQ((*kept)->view.result, (nlohmann::json{{"shipped", 1}}));
  EXPECT_FALSE(gateway->get_process("globex", done)->has_value());  // its tenant's only
  EXPECT_FALSE(gateway->get_process("acme", pending));              // read again: fails
}

// Two gateways: what one revokes, it refuses at once, and the other once its memory of the
// last check has run out (MongoStore::kUsableFor, well within the 1 s the design allows).
TEST_F(RedisBackendTest, ARevocationThroughOneGatewayIsRefusedByTheOtherWithinASecond) {
  auto one = open(30s);
  auto other = open(30s);
  const auto now = now_utc();
  ASSERT_TRUE(one->add_client({"sgc_1", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(one->add_client({"sgc_2", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(one->add_refresh_token({"r1", "sgc_2", "f1", "", now + 1h}));
  EXPECT_TRUE(*other->token_usable("sgc_1", ""));
  EXPECT_TRUE(*other->token_usable("sgc_2", "f1"));
  EXPECT_FALSE(*other->token_usable("sgc_unknown", ""));
  EXPECT_TRUE(*one->token_usable("sgc_1", ""));
  ASSERT_TRUE(one->revoke_client("sgc_1", now));
  EXPECT_FALSE(*one->token_usable("sgc_1", ""));
  EXPECT_TRUE(test::wait_until([&] { return !*other->token_usable("sgc_1", ""); }, 1s));
  // A refresh token used twice revokes its family, on either gateway.
  ASSERT_EQ(one->rotate_refresh_token("r1", "r2", now + 1h, now)->kind,
            RefreshResult::Kind::kRotated);
  ASSERT_EQ(one->rotate_refresh_token("r1", "r3", now + 1h, now)->kind,
            RefreshResult::Kind::kReused);
  EXPECT_TRUE(test::wait_until([&] { return !*other->token_usable("sgc_2", "f1"); }, 1s));
  EXPECT_TRUE(*other->token_usable("sgc_2", "f-other"));
  // Answered by Redis: the index is built.
  EXPECT_EQ(redis_->command({"EXISTS", "stargate:revoked:built"})->integer, 1);
}

// Workers that are gone (a restart gives a worker a new name) are forgotten by the group
// once idle and holding nothing; a worker still holding an entry is kept.
TEST_F(RedisBackendTest, WorkersGoneAreForgottenSoRestartsLeaveNothingBehind) {
  {
    // A new Redis (no stream yet, as at a worker's first sweep): nobody to forget, no error.
    RedisWorkStream first(redis_, "first", 30s);
    auto none = first.forget_idle_workers(500ms);
    ASSERT_TRUE(none) << none.error();
    EXPECT_EQ(*none, 0u);
  }
  auto gateway = open(30s);
  {
    auto finished = open(30s);
    ASSERT_FALSE(submit(*gateway, "k1").empty());
    auto next = finished->claim_next(now_utc());
    ASSERT_TRUE(next && next->has_value());
    ASSERT_TRUE(finished->complete((*next)->view.process_id, {{"ok", true}}, now_utc()));
  }
  auto holding = open(30s);
  ASSERT_FALSE(submit(*gateway, "k2").empty());
  auto held = holding->claim_next(now_utc());
  ASSERT_TRUE(held && held->has_value());
  auto consumers = redis_->command({"XINFO", "CONSUMERS", "stargate:queue", "workers"});
  ASSERT_TRUE(consumers) << consumers.error();
  EXPECT_EQ(consumers->elements.size(), 2u);
  std::this_thread::sleep_for(600ms);
  RedisWorkStream sweeper(redis_, "sweeper", 30s);
  auto forgotten = sweeper.forget_idle_workers(500ms);
  ASSERT_TRUE(forgotten) << forgotten.error();
  EXPECT_EQ(*forgotten, 1u);
  consumers = redis_->command({"XINFO", "CONSUMERS", "stargate:queue", "workers"});
  ASSERT_TRUE(consumers) << consumers.error();
  EXPECT_EQ(consumers->elements.size(), 1u);  // the one holding k2's entry
  ASSERT_TRUE(holding->complete((*held)->view.process_id, {{"ok", true}}, now_utc()));
}

// Redis lost everything: the record answers at once, and the index is built again.
TEST_F(RedisBackendTest, ALostIndexIsRebuiltAndNeverLetsARevokedTokenThrough) {
  auto gateway = open(30s);
  const auto now = now_utc();
  ASSERT_TRUE(gateway->add_client({"sgc_1", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(gateway->add_client({"sgc_2", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(gateway->revoke_client("sgc_1", now));
  ASSERT_TRUE(redis_->command({"FLUSHALL"}));
  EXPECT_FALSE(*gateway->token_usable("sgc_1", ""));
  EXPECT_TRUE(*gateway->token_usable("sgc_2", ""));
  EXPECT_EQ(redis_->command({"SISMEMBER", "stargate:revoked", "client:sgc_1"})->integer, 1);
  EXPECT_EQ(redis_->command({"EXISTS", "stargate:revoked:built"})->integer, 1);
}

// A revocation whose copy to Redis was lost (a failover to a replica that had not seen it):
// the comparison with the record catches it within kReconcileEvery.
TEST_F(RedisBackendTest, ARevocationRedisMissedIsCaughtByTheComparisonWithTheRecord) {
  auto one = open(30s);
  auto other = open(30s);
  const auto now = now_utc();
  ASSERT_TRUE(one->add_client({"sgc_1", "acme", "h", {"order"}, now, false}));
  EXPECT_TRUE(*other->token_usable("sgc_1", ""));
  ASSERT_TRUE(one->revoke_client("sgc_1", now));
  ASSERT_TRUE(redis_->command({"SREM", "stargate:revoked", "client:sgc_1"}));
  const auto revoked_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(test::wait_until([&] { return !*other->token_usable("sgc_1", ""); },
                               MongoStore::kReconcileEvery + 5s));
  EXPECT_LE(std::chrono::steady_clock::now() - revoked_at, MongoStore::kReconcileEvery + 2s);
}

// Redis down: every check is answered by the record.
TEST_F(RedisBackendTest, WithoutRedisTheRecordDecidesTokens) {
  auto gateway = open(30s);
  const auto now = now_utc();
  ASSERT_TRUE(gateway->add_client({"sgc_1", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(gateway->add_client({"sgc_2", "acme", "h", {"order"}, now, false}));
  EXPECT_TRUE(*gateway->token_usable("sgc_1", ""));
  redis_server_->stop(true);
  ASSERT_TRUE(gateway->revoke_client("sgc_1", now));  // its copy to Redis fails, logged
  auto revoked = gateway->token_usable("sgc_1", "");
  ASSERT_TRUE(revoked) << revoked.error();
  EXPECT_FALSE(*revoked);
  EXPECT_TRUE(*gateway->token_usable("sgc_2", ""));
}

}  // namespace
}  // namespace stargate::server
