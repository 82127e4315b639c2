// The store conformance suite: every port's semantics, run against every backend (the
// embedded SQLite store on a real file; MongoDB, or FerretDB started by the test, alone and
// with its work queue and revocation index on a real redis-server), so that all keep the
// same behaviour. Tampering with the audit trail goes straight to the
// backend's own storage, as an attacker with database access would.
#include "tests/server/store_fixture.hpp"

namespace stargate::server::store_suite {
namespace {

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "mongo", "redis_mongo"),
                         [](const ::testing::TestParamInfo<std::string>& backend) {
                           return backend.param;
                         });

// What the metrics show of the store: processes in each state, and those queued.
TEST_P(StoreTest, ProcessCountsCountEveryStateAndTheQueued) {
  for (const char* key : {"k1", "k2", "k3", "k4"})
    ASSERT_TRUE(store_->create_process(new_process("acme", key)));
  std::vector<std::string> claimed;
  for (int i = 0; i < 3; ++i) {
    auto next = store_->claim_next(now_utc());
    ASSERT_TRUE(next && next->has_value()) << i;
    claimed.push_back((*next)->view.process_id);
  }
  ASSERT_TRUE(store_->complete(claimed[0], {{"ok", true}}, now_utc()));
  ASSERT_TRUE(store_->fail_process(claimed[1], {"E", "m", {}}, false, now_utc()));
  auto counts = store_->process_counts();
  ASSERT_TRUE(counts) << counts.error();
  EXPECT_EQ(counts->by_status,
            (std::map<std::string, std::int64_t>{
                {"accepted", 1}, {"processing", 1}, {"completed", 1}, {"failed", 1}}));
  EXPECT_EQ(counts->queued, 1);
}

// The store holds a key for the first request that brings it and answers every later one
// with that process and the first request's hash (processes/ decides replay or conflict).
TEST_P(StoreTest, AKeyHeldAnswersWithItsProcessAndWritesNothing) {
  auto first = store_->create_process(new_process("acme", "k1", "hash-a"));
  auto replay = store_->create_process(new_process("acme", "k1", "hash-a"));
  auto reused = store_->create_process(new_process("acme", "k1", "hash-b"));
  ASSERT_TRUE(first && replay && reused);
  EXPECT_TRUE(first->inserted);
  EXPECT_FALSE(replay->inserted);
  EXPECT_EQ(replay->held_request_hash, "hash-a");
  EXPECT_EQ(replay->process.view.process_id, first->process.view.process_id);
  EXPECT_FALSE(reused->inserted);
  EXPECT_EQ(reused->held_request_hash, "hash-a");
  EXPECT_EQ(reused->process.view.process_id, first->process.view.process_id);
  auto counts = store_->process_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->by_status["accepted"], 1);
  // Keys belong to a tenant: another tenant's identical key is a new process.
  auto other = store_->create_process(new_process("globex", "k1", "hash-a"));
  EXPECT_TRUE(other->inserted);
  EXPECT_NE(other->process.view.process_id, first->process.view.process_id);
}

TEST_P(StoreTest, ConcurrentSubmissionsWithOneKeyCreateOneProcess) {
  std::vector<std::thread> threads;
  std::atomic<int> created{0}, replayed{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      auto result = store_->create_process(new_process("acme", "same-key"));
      if (result && result->inserted) ++created;
      if (result && !result->inserted) ++replayed;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(created, 1);
  EXPECT_EQ(replayed, 15);
}

// New and reused keys at once (on MongoDB they share batched inserts, where the server
// refuses the duplicates one by one): each key makes one process, whatever its neighbours.
TEST_P(StoreTest, ManyKeysAtOnceMakeOneProcessEach) {
  constexpr int kKeys = 8, kSenders = 3;
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::map<std::string, std::set<std::string>> ids_by_key;
  std::atomic<int> created{0}, replayed{0}, failed{0}, ready{0};
  for (int i = 0; i < kKeys * kSenders; ++i) {
    threads.emplace_back([&, i] {
      const std::string key = "key-" + std::to_string(i % kKeys);
      ++ready;
      while (ready < kKeys * kSenders)
        std::this_thread::yield();
      auto result = store_->create_process(new_process("acme", key, "hash-" + key));
      if (!result) {
        ++failed;
        return;
      }
      ++(result->inserted ? created : replayed);
      std::lock_guard lock(mutex);
      ids_by_key[key].insert(result->process.view.process_id);
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(created, kKeys);
  EXPECT_EQ(replayed, kKeys * (kSenders - 1));
  std::set<std::string> all;
  for (const auto& [key, ids] : ids_by_key) {
    EXPECT_EQ(ids.size(), 1u) << key;
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kKeys));
  auto counts = store_->process_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->by_status["accepted"], kKeys);
}

// What `count` requests for one process, sent at once through the stores in turn, came to.
struct Sent {
  int created = 0, replayed = 0, failed = 0;
  std::set<std::string> ids;
};
Sent send_at_once(const std::vector<Store*>& stores, int count, const NewProcess& process) {
  Sent sent;
  std::mutex mutex;
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, store = stores[i % stores.size()]] {
      auto result = store->create_process(process);
      std::lock_guard lock(mutex);
      if (!result) {
        ++sent.failed;
        return;
      }
      ++(result->inserted ? sent.created : sent.replayed);
      sent.ids.insert(result->process.view.process_id);
    });
  }
  for (auto& thread : threads)
    thread.join();
  return sent;
}

// Two gateways at once, each with its own connection: one key still makes one process.
TEST_P(StoreTest, TwoStoresGivenOneKeyMakeOneProcess) {
  auto other = second_store();
  ASSERT_TRUE(other);
  auto sent = send_at_once({store_.get(), other.get()}, 16, new_process("acme", "shared-key"));
  EXPECT_EQ(sent.failed, 0);
  EXPECT_EQ(sent.created, 1);
  EXPECT_EQ(sent.replayed, 15);
  EXPECT_EQ(sent.ids.size(), 1u);
  auto counts = store_->process_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->by_status["accepted"], 1);
}

// Gateways make ids at once (each from a block of its own on MongoDB): none is handed out
// twice.
TEST_P(StoreTest, TwoStoresNeverHandOutOneIdTwice) {
  auto other = second_store();
  ASSERT_TRUE(other);
  std::vector<std::thread> threads;
  std::mutex ids_mutex;
  std::set<std::string> ids;
  std::atomic<int> failed{0};
  for (int i = 0; i < 4; ++i) {
    Store& store = i % 2 == 0 ? *store_ : *other;
    threads.emplace_back([&] {
      for (int n = 0; n < 30; ++n) {
        auto result = store.create_process(new_process("acme", ""));
        if (!result || !result->inserted) {
          ++failed;
          continue;
        }
        std::lock_guard lock(ids_mutex);
        ids.insert(result->process.view.process_id);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(ids.size(), 120u);
  auto counts = store_->process_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->by_status["accepted"], 120);
}

TEST_P(StoreTest, StockIsReservedWhollyOrNotAtAllAndOncePerProcess) {
  const std::vector<StockLine> lines = {{"SKU-A", 3, 5}, {"SKU-B", 2, 2}};
  auto first = store_->reserve_stock("PROC-1", lines);
  ASSERT_TRUE(first) << first.error();
  EXPECT_TRUE(first->reserved);
  // Run again after a restart: it keeps what it holds and takes nothing more.
  EXPECT_TRUE(store_->reserve_stock("PROC-1", lines)->reserved);
  auto held = store_->reserved_stock({}, "");
  ASSERT_TRUE(held);
  EXPECT_EQ(*held, (std::map<std::string, std::int64_t>{{"SKU-A", 3}, {"SKU-B", 2}}));
  EXPECT_TRUE(store_->reserved_stock({"SKU-A"}, "PROC-1")->empty());
  // SKU-A has 2 left, SKU-B none: refused, and SKU-A's line is not taken either.
  auto short_of_b = store_->reserve_stock("PROC-2", {{"SKU-A", 1, 5}, {"SKU-B", 1, 2}});
  ASSERT_TRUE(short_of_b);
  EXPECT_FALSE(short_of_b->reserved);
  EXPECT_EQ(short_of_b->sku, "SKU-B");
  EXPECT_EQ(short_of_b->requested, 1);
  EXPECT_EQ(short_of_b->available, 0);
  EXPECT_EQ((*store_->reserved_stock({"SKU-A"}, ""))["SKU-A"], 3);
  EXPECT_TRUE(store_->reserve_stock("PROC-3", {{"SKU-A", 2, 5}})->reserved);
}

// SKUs are the client's words: separators of the store's own ids, operator-like and dotted
// names, quotes and a 2,000-byte name are reserved and listed exactly, each on its own.
TEST_P(StoreTest, HostileSkuNamesAreKeptApart) {
  const std::vector<std::string> skus = {
      "A", "A\n1", "A\n", "\n", "$where", "a.b", "\"; DROP", "ü-€", std::string(2000, 'x')};
  for (std::size_t i = 0; i < skus.size(); ++i) {
    auto outcome = store_->reserve_stock("PROC-" + std::to_string(i),
                                         {{skus[i], static_cast<std::int64_t>(i + 1), 100}});
    ASSERT_TRUE(outcome) << outcome.error();
    EXPECT_TRUE(outcome->reserved) << i;
  }
  auto held = store_->reserved_stock({}, "");
  ASSERT_TRUE(held) << held.error();
  ASSERT_EQ(held->size(), skus.size());
  for (std::size_t i = 0; i < skus.size(); ++i) {
    EXPECT_EQ(held->at(skus[i]), static_cast<std::int64_t>(i + 1)) << i;
    EXPECT_EQ((*store_->reserved_stock({skus[i]}, "PROC-" + std::to_string(i))).count(skus[i]), 0u);
  }
}

// One process run twice at once (its lease ran out under a slow worker, another took it
// over), through two stores: it holds its units once.
TEST_P(StoreTest, TheSameOrderRunTwiceAtOnceReservesOnce) {
  auto other = second_store();
  ASSERT_TRUE(other);
  const std::vector<StockLine> lines = {{"SKU-A", 2, 10}, {"SKU-B", 1, 10}};
  std::vector<std::thread> threads;
  std::atomic<int> reserved{0};
  for (int i = 0; i < 4; ++i) {
    Store& store = i % 2 == 0 ? *store_ : *other;
    threads.emplace_back([&] {
      auto outcome = store.reserve_stock("PROC-TWICE", lines);
      EXPECT_TRUE(outcome) << outcome.error();
      if (outcome && outcome->reserved) ++reserved;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(reserved, 4);
  auto held = store_->reserved_stock({}, "");
  ASSERT_TRUE(held) << held.error();
  EXPECT_EQ(*held, (std::map<std::string, std::int64_t>{{"SKU-A", 2}, {"SKU-B", 1}}));
  EXPECT_TRUE(store_->reserved_stock({"SKU-A", "SKU-B"}, "PROC-TWICE")->empty());
}

// Orders racing from two stores for the last units sell each of them, and no more.
TEST_P(StoreTest, RacingOrdersSellEveryUnitAndNoMore) {
  auto other = second_store();
  ASSERT_TRUE(other);
  std::vector<std::thread> threads;
  std::atomic<int> reserved{0}, failed{0};
  for (int i = 0; i < 8; ++i) {
    Store& store = i % 2 == 0 ? *store_ : *other;
    threads.emplace_back([&, i] {
      auto outcome = store.reserve_stock("PROC-" + std::to_string(i), {{"SKU-LAST", 1, 3}});
      if (!outcome) ++failed;
      if (outcome && outcome->reserved) ++reserved;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(reserved, 3);
  EXPECT_EQ((*store_->reserved_stock({"SKU-LAST"}, ""))["SKU-LAST"], 3);
}

// What a client sends is data, never a query: operator-like keys, dotted keys, odd strings
// and large numbers come back exactly as they went in.
TEST_P(StoreTest, HostileDataIsStoredAsData) {
  auto process = new_process("acme\"; DROP", "{\"$ne\": null}");
  process.request.data = nlohmann::json::parse(R"json({"$where": "sleep(1000)",
      "a.b": {"$gt": ""}, "n": 9007199254740993, "f": 1.5e300,
      "s": "\u0000\u00e9\ud83d\ude00", "deep": [[[{"x": null}]]]})json");
  auto created = store_->create_process(process);
  ASSERT_TRUE(created) << created.error();
  auto found = store_->get_process(process.tenant, created->process.view.process_id);
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->data, process.request.data);
  EXPECT_EQ((*found)->tenant, process.tenant);
  // The same odd key again is a replay, not a query that matches something else.
  auto again = store_->create_process(process);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->inserted);
  auto other_key = new_process("acme\"; DROP", "{\"$gt\": \"\"}");
  EXPECT_TRUE(store_->create_process(other_key)->inserted);
  EXPECT_FALSE(store_->find_client("{\"$ne\": null}")->has_value());
}

TEST_P(StoreTest, TenantsOnlySeeTheirOwn) {
  auto a = store_->create_process(new_process("acme", "k1"));
  const auto id = a->process.view.process_id;
  EXPECT_TRUE(store_->get_process("acme", id)->has_value());
  EXPECT_FALSE(store_->get_process("globex", id)->has_value());
  ListQuery query;
  query.tenant = "globex";
  EXPECT_TRUE(store_->list_processes(query)->empty());
}

// The engine renews the leases of the processes it runs from a thread of its own, so a
// renewal can be on its way while the process's outcome is written. The outcome stands:
// a renewal never puts a finished process back to processing (FerretDB writes an updated
// document whole, from what it read before: it did, and another worker ran the process
// again after the lease).
TEST_P(StoreTest, AnOutcomeWrittenWhileTheLeaseIsRenewedStands) {
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i)
    ids.push_back(store_->create_process(new_process("acme", ""))->process.view.process_id);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto claimed = store_->claim_next(now_utc());
    ASSERT_TRUE(claimed && claimed->has_value()) << i;
    const auto id = (*claimed)->view.process_id;
    std::atomic<bool> finished{false};
    std::thread renewing([&] {
      while (!finished)
        (void)store_->renew_lease(id, now_utc());
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const bool done = i % 2 == 0
                          ? store_->complete(id, {{"ok", true}}, now_utc()).has_value()
                          : store_->fail_process(id, {"E", "m", {}}, false, now_utc()).has_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    finished = true;
    renewing.join();
    ASSERT_TRUE(done) << id;
    const auto view = (*store_->get_process("acme", id))->view;
    EXPECT_EQ(view.status, i % 2 == 0 ? ProcessStatus::kCompleted : ProcessStatus::kFailed) << id;
  }
  EXPECT_FALSE(store_->claim_next(now_utc() + std::chrono::hours(1))->has_value())
      << "a finished process was claimable again";
}

TEST_P(StoreTest, QueueRunsInOrderAndRecordsOutcomes) {
  const auto now = now_utc();
  auto a = store_->create_process(new_process("acme", "k1"));
  auto b = store_->create_process(new_process("acme", "k2"));
  auto first = store_->claim_next(now);
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->view.process_id, a->process.view.process_id);
  EXPECT_EQ((*first)->view.status, ProcessStatus::kProcessing);
  ASSERT_TRUE(store_->update_progress(a->process.view.process_id, 50, "reserve", now));
  auto view = (*store_->get_process("acme", a->process.view.process_id))->view;
  EXPECT_EQ(view.progress, 50);
  EXPECT_EQ(view.current_step, "reserve");
  ASSERT_TRUE(store_->complete(a->process.view.process_id, {{"ok", true}}, now));
  EXPECT_FALSE(store_->complete(a->process.view.process_id, {{"ok", true}}, now));  // not twice
  auto second = store_->claim_next(now);
  EXPECT_EQ((*second)->view.process_id, b->process.view.process_id);
  ASSERT_TRUE(store_->fail_process(b->process.view.process_id, {"E", "m", {}}, true, now));
  EXPECT_FALSE(store_->claim_next(now)->has_value());
  auto failed = (*store_->get_process("acme", b->process.view.process_id))->view;
  EXPECT_EQ(failed.status, ProcessStatus::kFailed);
  EXPECT_TRUE(failed.retryable);
  EXPECT_EQ(failed.error->code, "E");
}

// Workers claiming at once, from two stores: every process is claimed by exactly one.
TEST_P(StoreTest, ConcurrentClaimsTakeEachProcessOnce) {
  for (int i = 0; i < 6; ++i)
    ASSERT_TRUE(store_->create_process(new_process("acme", "c" + std::to_string(i))));
  auto other = second_store();
  ASSERT_TRUE(other);
  std::mutex mutex;
  std::multiset<std::string> claimed;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    Store& store = i % 2 == 0 ? *store_ : *other;
    threads.emplace_back([&] {
      for (int n = 0; n < 4; ++n) {
        auto next = store.claim_next(now_utc());
        if (next && next->has_value()) {
          std::lock_guard lock(mutex);
          claimed.insert((*next)->view.process_id);
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(claimed.size(), 6u);
  for (const auto& id : claimed)
    EXPECT_EQ(claimed.count(id), 1u) << id;
}

TEST_P(StoreTest, InterruptedProcessesAreRequeued) {
  auto a = store_->create_process(new_process("acme", "k1"));
  ASSERT_TRUE(store_->claim_next(now_utc())->has_value());
  EXPECT_FALSE(store_->claim_next(now_utc())->has_value());
  // Past any lease: a store with leases requeues only those that ran out.
  EXPECT_EQ(*store_->requeue_interrupted(now_utc() + std::chrono::minutes(5)), 1u);
  auto again = store_->claim_next(now_utc());
  EXPECT_EQ((*again)->view.process_id, a->process.view.process_id);
}

TEST_P(StoreTest, ListIsNewestFirstAndPaginated) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(store_->create_process(new_process("acme", "k" + std::to_string(i))));
  ListQuery query;
  query.tenant = "acme";
  query.limit = 2;
  auto page1 = *store_->list_processes(query);
  ASSERT_EQ(page1.size(), 2u);
  EXPECT_EQ(page1[0].view.process_id, "PROC-20260114-00005");
  query.cursor = page1[1].view.process_id;
  auto page2 = *store_->list_processes(query);
  EXPECT_EQ(page2[0].view.process_id, "PROC-20260114-00003");
}

TEST_P(StoreTest, ClientsRoundTrip) {
  ClientRecord client{"sgc_1", "acme", "$argon2id$...", {"order", "shipping"}, now_utc(), false};
  ASSERT_TRUE(store_->add_client(client));
  EXPECT_FALSE(store_->add_client(client));  // ids are unique
  auto found = store_->find_client("sgc_1");
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->process_types, client.process_types);
  EXPECT_FALSE(store_->find_client("sgc_2")->has_value());
}

TEST_P(StoreTest, ARotatedSecretKeepsTheOneItReplacedForTheGrace) {
  const auto now = now_utc();
  ASSERT_TRUE(store_->add_client({"sgc_1", "acme", "h1", {"order"}, now, false}));
  EXPECT_FALSE((*store_->find_client("sgc_1"))->previous_secret_valid(now));
  const auto until = now + std::chrono::hours(24);
  ASSERT_TRUE(store_->rotate_client_secret("sgc_1", "h2", until));
  auto client = **store_->find_client("sgc_1");
  EXPECT_EQ(client.secret_hash, "h2");
  EXPECT_EQ(client.previous_secret_hash, "h1");
  ASSERT_TRUE(client.previous_secret_until.has_value());
  EXPECT_EQ(to_unix_ms(*client.previous_secret_until), to_unix_ms(until));
  EXPECT_TRUE(client.previous_secret_valid(now));
  EXPECT_FALSE(client.previous_secret_valid(until));
  // Listed as found.
  EXPECT_EQ((*store_->list_clients()).at(0).previous_secret_hash, "h1");

  // A second rotation forgets the first secret; without a grace the one replaced is not kept.
  ASSERT_TRUE(store_->rotate_client_secret("sgc_1", "h3", std::nullopt));
  client = **store_->find_client("sgc_1");
  EXPECT_EQ(client.secret_hash, "h3");
  EXPECT_EQ(client.previous_secret_hash, "h2");
  EXPECT_FALSE(client.previous_secret_until.has_value());
  EXPECT_FALSE(client.previous_secret_valid(now));

  // Unknown and revoked clients are not rotated, and nothing changes.
  EXPECT_FALSE(store_->rotate_client_secret("sgc_missing", "h4", until));
  EXPECT_FALSE(store_->find_client("sgc_missing")->has_value());
  ASSERT_TRUE(store_->revoke_client("sgc_1", now));
  EXPECT_FALSE(store_->rotate_client_secret("sgc_1", "h4", until));
  EXPECT_EQ((**store_->find_client("sgc_1")).secret_hash, "h3");
}

TEST_P(StoreTest, RefreshTokensRotateAndReuseRevokesTheFamily) {
  const auto now = now_utc();
  ASSERT_TRUE(store_->add_client({"sgc_1", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(store_->add_refresh_token(
      {"r1", "sgc_1", "fam", "process:order", now + std::chrono::hours(1)}));
  EXPECT_TRUE(*store_->token_usable("sgc_1", "fam"));
  auto rotated = store_->rotate_refresh_token("r1", "r2", now + std::chrono::hours(1), now);
  ASSERT_TRUE(rotated);
  ASSERT_EQ(rotated->kind, RefreshResult::Kind::kRotated);
  EXPECT_EQ(rotated->client.tenant, "acme");
  EXPECT_EQ(rotated->next.family, "fam");
  EXPECT_EQ(rotated->next.scopes, "process:order");
  // r1 again: reuse. The family is revoked, so r2 and the access tokens of the family die.
  EXPECT_EQ(store_->rotate_refresh_token("r1", "r3", now, now)->kind, RefreshResult::Kind::kReused);
  EXPECT_FALSE(*store_->token_usable("sgc_1", "fam"));
  EXPECT_EQ(store_->rotate_refresh_token("r2", "r4", now, now)->kind,
            RefreshResult::Kind::kInvalid);
  EXPECT_EQ(store_->rotate_refresh_token("unknown", "r5", now, now)->kind,
            RefreshResult::Kind::kInvalid);
}

TEST_P(StoreTest, ExpiredRefreshTokensAndRevokedClients) {
  const auto now = now_utc();
  ASSERT_TRUE(store_->add_client({"sgc_1", "acme", "h", {"order"}, now, false}));
  ASSERT_TRUE(store_->add_refresh_token({"old", "sgc_1", "f1", "", now - std::chrono::seconds(1)}));
  EXPECT_EQ(store_->rotate_refresh_token("old", "n", now, now)->kind,
            RefreshResult::Kind::kInvalid);
  ASSERT_TRUE(store_->add_refresh_token({"r", "sgc_1", "f2", "", now + std::chrono::hours(1)}));
  ASSERT_TRUE(store_->revoke_client("sgc_1", now));
  EXPECT_FALSE(*store_->token_usable("sgc_1", "f2"));
  EXPECT_FALSE(*store_->token_usable("sgc_1", ""));
  EXPECT_EQ(store_->rotate_refresh_token("r", "n2", now, now)->kind, RefreshResult::Kind::kInvalid);
  EXPECT_FALSE(store_->revoke_client("sgc_missing", now));
  EXPECT_FALSE(*store_->token_usable("sgc_missing", ""));
}

TEST_P(StoreTest, IdempotencyKeysArePrunedAfterTheirTime) {
  auto first = store_->create_process(new_process("acme", "k1"));
  const auto created = first->process.view.created_at;
  EXPECT_EQ(*store_->prune_idempotency_keys(created), 0u);
  EXPECT_EQ(*store_->prune_idempotency_keys(created + std::chrono::milliseconds(1)), 1u);
  // The key is gone: the same key now makes a new process.
  EXPECT_TRUE(store_->create_process(new_process("acme", "k1"))->inserted);
}

// One store (a worker's housekeeping) forgets; another (a gateway) follows it. The first
// requests to bring the forgotten key again, through either store at once, make one new
// process and the others replay it.
TEST_P(StoreTest, AKeyForgottenByOneStoreIsForgottenByAnotherOnce) {
  auto other = second_store();
  ASSERT_TRUE(other);
  auto first = store_->create_process(new_process("acme", "k1"));
  ASSERT_TRUE(first && first->inserted);
  ASSERT_TRUE(
      other->prune_idempotency_keys(first->process.view.created_at + std::chrono::milliseconds(1)));
  auto again = new_process("acme", "k1");
  again.now += std::chrono::minutes(1);  // after the cut, as time goes on
  auto sent = send_at_once({store_.get(), other.get()}, 8, again);
  EXPECT_EQ(sent.failed, 0);
  EXPECT_EQ(sent.created, 1);
  EXPECT_EQ(sent.replayed, 7);
  ASSERT_EQ(sent.ids.size(), 1u);
  EXPECT_NE(*sent.ids.begin(), first->process.view.process_id);
}

// Many old keys: every one is forgotten, its process stays as it was, and keys newer than
// the cut (and processes without a key) are left alone.
TEST_P(StoreTest, ManyOldKeysArePrunedAndTheirProcessesStay) {
  constexpr int kOld = 520;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  std::string old_id;  // of old-0
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kOld; i += 8) {
        if (auto made = store_->create_process(new_process("acme", "old-" + std::to_string(i)));
            !made || !made->inserted) {
          ++failed;
        } else if (i == 0) {
          old_id = made->process.view.process_id;
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  ASSERT_EQ(failed.load(), 0);
  auto newer = new_process("acme", "new", "hash-new");
  newer.now += std::chrono::minutes(1);
  auto kept = store_->create_process(newer);
  auto keyless = new_process("acme", "");
  keyless.now = newer.now;
  ASSERT_TRUE(kept && store_->create_process(keyless));

  auto pruned = store_->prune_idempotency_keys(newer.now);
  ASSERT_TRUE(pruned) << pruned.error();
  EXPECT_EQ(*pruned, static_cast<std::size_t>(kOld));
  EXPECT_EQ(*store_->prune_idempotency_keys(newer.now), 0u);
  auto counts = store_->process_counts();
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->by_status["accepted"], kOld + 2);
  auto again = store_->create_process(new_process("acme", "old-7"));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->inserted) << "a forgotten key makes a new process";
  auto replay = store_->create_process(new_process("acme", "new", "hash-other"));
  ASSERT_TRUE(replay);
  EXPECT_FALSE(replay->inserted) << "a key newer than the cut is still held";
  EXPECT_EQ(replay->held_request_hash, "hash-new");
  EXPECT_EQ(replay->process.view.process_id, kept->process.view.process_id);
  auto first = store_->get_process("acme", old_id);
  ASSERT_TRUE(first) << first.error();
  ASSERT_TRUE(first->has_value()) << old_id;
  EXPECT_EQ((*first)->view.status, ProcessStatus::kAccepted);
}

TEST_P(StoreTest, OnlyRetryableFailuresAreRetried) {
  const auto now = now_utc();
  auto a = store_->create_process(new_process("acme", "k1"));
  const auto id = a->process.view.process_id;
  const auto later = now + std::chrono::minutes(10);
  EXPECT_EQ(*store_->retry_process("acme", id, now, later), Store::RetryOutcome::kNotRetryable);
  ASSERT_TRUE(store_->claim_next(now)->has_value());
  ASSERT_TRUE(store_->fail_process(id, {"E", "m", {}}, true, now));
  EXPECT_EQ(*store_->retry_process("globex", id, now, later), Store::RetryOutcome::kNotFound);
  EXPECT_EQ(*store_->retry_process("acme", id, now, later), Store::RetryOutcome::kRetried);
  auto record = **store_->get_process("acme", id);
  EXPECT_EQ(record.view.status, ProcessStatus::kAccepted);
  EXPECT_EQ(record.attempt, 2);
  EXPECT_FALSE(record.view.error.has_value());
  EXPECT_EQ(to_unix_ms(*record.view.estimated_completion), to_unix_ms(later));
  ASSERT_TRUE(store_->claim_next(now)->has_value());  // back on the queue
  ASSERT_TRUE(store_->fail_process(id, {"E", "m", {}}, false, now));
  EXPECT_EQ(*store_->retry_process("acme", id, now, later), Store::RetryOutcome::kNotRetryable);
}

}  // namespace
}  // namespace stargate::server::store_suite
