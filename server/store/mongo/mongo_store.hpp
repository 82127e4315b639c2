// The system of record of the scale-out backend: every port of the store on MongoDB (or a
// server that speaks its protocol, such as FerretDB), for any number of gateways and
// workers at once. Every write is acknowledged by a majority, journaled. No multi-document
// transaction is used (FerretDB has none): each change that must be atomic is one
// document's, and the changes that span documents are ordered so that a crash between them
// leaves something the next attempt completes (see man/stargate-server.8, "Scale out").
// Collections: clients, token_families, refresh_tokens, processes (each with its
// idempotency key), id_blocks, claims, revocations, refresh_spent, audit, stock_skus,
// stock_ledger, stock_takes, stock_holds (and stock_lines, read only: an earlier version's).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/store/answer_cache.hpp"
#include "server/store/change_index.hpp"
#include "server/store/completed_records.hpp"
#include "server/store/group_commit.hpp"
#include "server/store/mongo/mongo_client.hpp"
#include "server/store/queue_index.hpp"
#include "server/store/revocation_index.hpp"
#include "server/store/store.hpp"

namespace stargate::server {

class MongoStore final : public Store {
 public:
  // Does not connect: a server that is down now is reported by each call (and by
  // check_writable) until it is back, and the indexes are made on the first call that
  // reaches it.
  // `lease`: how long a worker's claim on a process lasts unless renewed; `worker` names
  // this program in the claims it makes (made unique when empty).
  static Expected<std::unique_ptr<MongoStore>> open(const std::string& uri,
                                                    Duration lease = std::chrono::seconds(30),
                                                    std::string worker = "");
  // Records the acceptances still waiting (see attach_queue) before it returns.
  ~MongoStore() override;

  // Workers find work through `queue` (a Redis Stream) instead of searching MongoDB, and
  // hear of it at once; gateways add its entries. Every `lease` one worker puts back the
  // entries Redis lost (see QueueIndex). Without one, workers look in MongoDB every second.
  // With one, create_process returns once the process's document is written: the record
  // of its acceptance and its entry follow from a thread of the store's (in that order, so
  // that what a stop or a failure leaves without its record has no entry either, and the
  // sweeper, which queues it, also records its acceptance).
  void attach_queue(std::shared_ptr<QueueIndex> queue);
  // Writes now the acceptances create_process left to the store's thread: their records,
  // then their entries. Returns once those the thread took before are written too.
  void record_acceptances();
  // token_usable() asks `index` (Redis) instead of MongoDB, which it builds again when it
  // was lost, and compares with MongoDB every kReconcileEvery.
  void attach_revocations(std::shared_ptr<RevocationIndex> index) {
    revocations_ = std::move(index);
  }
  static constexpr auto kReconcileEvery = std::chrono::seconds(5);
  // How long a gateway goes on trusting the index's "usable" for one client and token
  // family without asking again: a revocation made through another gateway is refused
  // here within this time (and through this one at once).
  static constexpr auto kUsableFor = std::chrono::milliseconds(250);
  // Completed processes are read from this store's memory first (the last
  // kCompletedKept read), then from `cache` (Redis), and put there for kAnswerTtl when read
  // from MongoDB.
  void attach_answers(std::shared_ptr<AnswerCache> cache) { answers_ = std::move(cache); }
  static constexpr auto kAnswerTtl = std::chrono::minutes(10);
  static constexpr std::size_t kCompletedKept = 4096;
  // Each change of a process is added to `changes` (Redis) once it is in MongoDB: the change
  // feed reads the ids there and the processes here. Without one the store keeps no feed.
  void attach_changes(std::shared_ptr<ChangeIndex> changes) { changes_ = std::move(changes); }

  Status add_client(const ClientRecord& client) override;
  Expected<std::optional<ClientRecord>> find_client(const std::string& client_id) override;
  Expected<std::vector<ClientRecord>> list_clients() override;
  Status revoke_client(const std::string& client_id, TimePoint now) override;
  Status rotate_client_secret(const std::string& client_id, const std::string& secret_hash,
                              std::optional<TimePoint> previous_until) override;
  Status add_refresh_token(const RefreshToken& token) override;
  Expected<RefreshResult> rotate_refresh_token(const std::string& hash,
                                               const std::string& next_hash, TimePoint next_expiry,
                                               TimePoint now) override;
  Expected<bool> token_usable(const std::string& client_id, const std::string& family) override;
  Expected<Insertion> create_process(const NewProcess& process) override;
  Expected<std::optional<ProcessRecord>> get_process(const std::string& tenant,
                                                     const std::string& process_id) override;
  Expected<std::vector<ProcessRecord>> list_processes(const ListQuery& query) override;
  Expected<RetryOutcome> retry_process(const std::string& tenant, const std::string& process_id,
                                       TimePoint now,
                                       std::optional<TimePoint> estimated_completion) override;
  Expected<std::size_t> prune_idempotency_keys(TimePoint before) override;
  Expected<std::optional<ProcessRecord>> claim_next(TimePoint now) override;
  bool claim_waits() const override { return queue_ != nullptr; }
  Status update_progress(const std::string& process_id, int progress, const std::string& step,
                         TimePoint now) override;
  Status complete(const std::string& process_id, const nlohmann::json& result,
                  TimePoint now) override;
  Status fail_process(const std::string& process_id, const ProcessError& error, bool retryable,
                      TimePoint now) override;
  Expected<std::size_t> requeue_interrupted(TimePoint now) override;
  Expected<ProcessCounts> process_counts() override;
  Expected<std::optional<TimePoint>> oldest_queued() override;
  Expected<Reservation> reserve_stock(const std::string& process_id,
                                      const std::vector<StockLine>& lines) override;
  Expected<std::map<std::string, std::int64_t>> reserved_stock(
      const std::vector<std::string>& skus, const std::string& except_process) override;
  Duration renew_every() const override { return lease_ / 3; }
  Status renew_lease(const std::string& process_id, TimePoint now) override;
  Expected<bool> holds(const std::string& process_id) override;
  const std::string& worker() const { return worker_; }
  Status check_writable() override;
  const char* readiness_name() const override { return "mongodb"; }
  bool has_change_feed() const override { return changes_ != nullptr; }
  Expected<ChangePage> changes_after(const ChangeQuery& query) override;
  void on_change(std::function<void(const std::string& tenant)> listener) override;
  Status append_audit(const std::vector<AuditEvent>& events) override;
  Status scan_audit(TimePoint since, const std::function<void(const AuditRecord&)>& sink) override;

 private:
  MongoStore(std::unique_ptr<mongo::Client> client, Duration lease, std::string worker);
  // Inserts of new processes' documents, batched: true when written (and on the change
  // feed), false when one with its _id or key was there already.
  using Inserts = GroupCommit<nlohmann::json, Expected<bool>>;
  std::unique_ptr<Inserts> process_inserts();
  // Makes the indexes once the server is reachable.
  Status ready();
  bool server_uses_indexes();
  Expected<std::optional<ProcessRecord>> load(const std::string& process_id);
  // The filter of a write to a process this worker holds: nullopt when it does not hold it
  // (see mongo_store_queue.cpp). Called in held_writes_mutex_'s turn.
  Expected<std::optional<nlohmann::json>> held_filter(const std::string& process_id);
  // The claim of one claimable process's document: nullopt when another worker won it.
  Expected<std::optional<ProcessRecord>> claim_document(const nlohmann::json& doc, TimePoint now);
  Expected<std::optional<ProcessRecord>> claim_from_queue(TimePoint now);
  // Entries on the queue for processes that became queued; a failure is only logged (the
  // sweeper covers it later).
  void enqueue(const std::vector<std::string>& process_ids);
  void acceptances_loop();
  // The entry of a process this worker finished, done with.
  void finished_entry(const std::string& process_id);
  void sweep_if_due(TimePoint now);
  // The sweeper found `doc` (an accepted process) without a queue entry: if the audit has
  // no record of its acceptance (its gateway stopped, or failed, between the two writes),
  // one is appended now, marked late.
  Status audit_acceptance_if_missing(const nlohmann::json& doc);
  // The next id of this store's block of ids for the day of `now`; the spare block when
  // that one is used up, a new block when there is none (or the day changed).
  Expected<std::string> next_process_id(TimePoint now, std::int64_t& seq);
  static Expected<std::int64_t> first_missing(
      std::int64_t from, const std::function<Expected<bool>(std::int64_t)>& exists);
  // Takes the first free block of `day` at or after `from`: its number.
  Expected<std::int64_t> take_id_block(const std::string& day, std::int64_t from);
  void unused_process_id(std::int64_t seq);
  Status record_revocation(const std::string& member, TimePoint now);
  Status revoke_family(const std::string& family);
  Status rebuild_revocations();
  void reconcile_revocations();
  // An audit block holds up to this many records, and is closed once its records' text
  // passes kAuditBlockBytes: far below MongoDB's 16 MB a document, and 16 blocks fit in one
  // reply of a scan.
  static constexpr std::size_t kAuditBlockRecords = 512;
  static constexpr std::size_t kAuditBlockBytes = 1 << 20;
  Status write_audit(const std::vector<AuditEvent>& events);
  Status follow_audit_head();
  // True when this call wrote it, false when its idempotency key is another process's.
  Expected<bool> insert_process(const std::string& id, std::int64_t seq, const NewProcess& process);
  Expected<std::int64_t> forget_before();
  Expected<bool> forgotten_key(const std::string& process_id, const std::string& claim);
  static AuditEvent state_event(const std::string& process_id, const std::string& tenant,
                                const char* from, const char* to, TimePoint now);
  Status audit_state(const std::string& process_id, const std::string& tenant, const char* from,
                     const char* to, TimePoint now);
  // Stock, as one ledger of entries for each SKU (see mongo_store_stock.cpp).
  struct LedgerHead {
    std::int64_t n = 0;         // the number of the SKU's last entry
    std::int64_t reserved = 0;  // the units reserved after it
  };
  // A ledger read from one entry on: its last entry and the units one process's entries
  // took (negative entries give units back).
  struct LedgerScan {
    LedgerHead head;
    std::int64_t own = 0;
  };
  // Entry 0: the units it starts from, and whether it is there (not only read).
  struct LedgerStart {
    std::int64_t reserved = 0;
    bool made = false;
  };
  Expected<std::optional<nlohmann::json>> find_by_id(const std::string& collection,
                                                     const std::string& id);
  Expected<LedgerStart> ledger_start(const std::string& sku, bool create);
  Expected<LedgerHead> ledger_head(const std::string& sku, bool create);
  Expected<LedgerScan> ledger_scan(const std::string& sku, std::int64_t after,
                                   const std::string& process_id);
  Status ledger_follow(const std::string& sku, LedgerScan& scan, const std::string& process_id);
  Expected<std::optional<Reservation>> ledger_settle(const std::string& sku,
                                                     const std::string& process_id,
                                                     std::int64_t wanted,
                                                     std::optional<std::int64_t> stock,
                                                     LedgerScan& scan);
  Expected<std::int64_t> take_intent(const std::string& process_id, const StockLine& line);
  void remember_head(const std::string& sku, const LedgerHead& head);
  // Puts a change that is in MongoDB on the change feed; a failure is only logged (the
  // index then makes the tenant's readers resynchronise).
  void changed(const std::string& tenant, const std::string& process_id);
  void changed(const std::string& tenant, const std::vector<std::string>& process_ids);
  // What the feed last heard of a process this worker holds, so that progress which
  // changes nothing is no change.
  struct Held {
    std::string tenant;
    int progress = 0;
    std::string step;
  };
  void hold(const ProcessRecord& record);
  void release(const std::string& process_id);

  std::unique_ptr<mongo::Client> db_;
  Duration lease_;
  std::string worker_;
  std::atomic<bool> schema_ready_{false};
  // Whether the server answers a filter other than a lone _id from an index (true until
  // ready() asked: the form that is right on every server).
  std::atomic<bool> filters_pushed_down_{true};
  std::mutex schema_mutex_;
  std::mutex ids_mutex_;
  std::string ids_day_;                    // the day of this store's block
  std::int64_t ids_next_ = 0;              // the next number of this store's block
  std::int64_t ids_end_ = 0;               // one past its last
  std::optional<std::int64_t> ids_spare_;  // the block taken for when that one is used up
  bool ids_taking_spare_ = false;          // a submission is taking it
  std::int64_t ids_last_block_ = -1;       // the highest block of ids_day_ taken
  std::unique_ptr<Inserts> process_inserts_;
  std::mutex keys_mutex_;
  std::int64_t forget_before_ = 0;  // unix ms: keys taken before it are forgotten
  std::chrono::steady_clock::time_point forget_read_at_{};
  GroupCommit<const std::vector<AuditEvent>*, Status> audit_appends_;
  std::shared_ptr<QueueIndex> queue_;
  std::mutex acceptances_mutex_;
  std::mutex acceptances_writing_;
  std::condition_variable acceptances_wake_;
  std::vector<AuditEvent> acceptances_;  // their records, in the order of the inserts
  bool stopping_ = false;
  std::thread acceptances_thread_;
  std::shared_ptr<RevocationIndex> revocations_;
  std::shared_ptr<AnswerCache> answers_;
  CompletedRecords completed_{kCompletedKept};
  std::shared_ptr<ChangeIndex> changes_;
  std::mutex held_mutex_;
  std::unordered_map<std::string, Held> held_;
  // This worker's writes of the processes it holds (lease renewals, progress, the outcome)
  // take turns. FerretDB applies an update by reading the document and writing it back
  // whole: a renewal read before the outcome and written after it would put a completed
  // process back to processing, and another worker would run it again after the lease.
  std::mutex held_writes_mutex_;
  std::mutex usable_mutex_;
  // "client\nfamily" -> until when the index's "usable" is trusted (see kUsableFor).
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> usable_until_;
  // What process_counts() last counted of the finished processes, and when.
  static constexpr auto kFinishedCountsFor = std::chrono::minutes(1);
  std::mutex finished_mutex_;
  std::optional<std::chrono::steady_clock::time_point> finished_counted_at_;
  std::map<std::string, std::int64_t> finished_;
  std::mutex stock_mutex_;
  std::unordered_map<std::string, LedgerHead> stock_heads_;  // the last entries seen
  std::mutex reconcile_mutex_;
  std::chrono::steady_clock::time_point last_reconcile_{};
  std::mutex entries_mutex_;
  std::map<std::string, QueueIndex::Entry> entries_;  // of the processes this worker runs
  std::mutex sweep_mutex_;
  TimePoint last_sweep_{};
  // The newest record of this store's audit chain (kept by the batch writer alone): none
  // yet, as the chain is new with every run.
  bool audit_head_known_ = true;
  std::int64_t audit_block_ = 0;  // the number of its newest block (rows::audit_block)
  std::int64_t audit_seq_ = 0;
  std::string audit_hash_;
};

}  // namespace stargate::server
