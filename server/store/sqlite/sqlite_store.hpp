// The embedded store: everything in one SQLite file (WAL, fsync on commit). Threads share
// one connection behind a mutex; SQLite serialises writers anyway.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/store/store.hpp"
#include "shared/sqlite.hpp"

namespace stargate::server {

class SqliteStore final : public Store {
 public:
  // Opens or creates the database and brings its schema up to date. Fails on a database
  // written by a newer StarGate (its schema version is higher than ours).
  static Expected<std::unique_ptr<SqliteStore>> open(const std::string& path);

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
  Status check_writable() override;
  Status append_audit(const std::vector<AuditEvent>& events) override;
  Status scan_audit(TimePoint since, const std::function<void(const AuditRecord&)>& sink) override;

  bool has_change_feed() const override { return true; }
  Expected<ChangePage> changes_after(const ChangeQuery& query) override;
  void on_change(std::function<void(const std::string& tenant)> listener) override {
    std::lock_guard lock(listener_mutex_);
    change_listener_ = std::move(listener);
  }

  static constexpr int kSchemaVersion = 7;

 private:
  explicit SqliteStore(db::Database db) : db_(std::move(db)) {}
  void migrate();
  void load_feed_epoch();
  // The next change's position, inside the caller's transaction (holding mutex_).
  std::int64_t next_change_locked();
  // Tells the change listener, after the commit, that a process of `tenant` changed.
  void announce(const std::string& tenant) {
    std::lock_guard lock(listener_mutex_);
    if (change_listener_) change_listener_(tenant);
  }
  static std::optional<ProcessRecord> load_process(db::Database& db, const std::string& process_id);

  // A read-only connection for one read, taken from a pool and given back at destruction.
  // Reads use these instead of mutex_ and db_: in WAL mode readers and the writer do not
  // wait for each other.
  class ReadLease {
   public:
    ReadLease(SqliteStore& store, std::unique_ptr<db::Database> db)
        : store_(store), db_(std::move(db)) {}
    ReadLease(ReadLease&&) = default;
    ~ReadLease();
    db::Database& db() { return *db_; }

   private:
    SqliteStore& store_;
    std::unique_ptr<db::Database> db_;
  };
  ReadLease reader();
  struct PendingCreate {
    explicit PendingCreate(const NewProcess& p) : process(p) {}
    const NewProcess& process;
    Expected<Insertion> result = fail("store: not committed");
    bool done = false;  // under batch_mutex_
  };
  void commit_creates(std::vector<std::shared_ptr<PendingCreate>>& batch);
  // One submission inside the open transaction; throws db::DbError.
  Expected<Insertion> create_locked(const NewProcess& process);
  std::string next_process_id(TimePoint now);
  std::string tenant_of(const std::string& process_id);
  // Appends one audit record; the caller holds mutex_ and has a transaction open, so the
  // record commits together with the change it describes.
  void append_audit_locked(const AuditEvent& event);
  void audit_state(const std::string& process_id, const std::string& tenant, const char* from,
                   const char* to, TimePoint now);

  std::mutex mutex_;  // serialises writes on db_
  db::Database db_;
  std::mutex batch_mutex_;
  std::condition_variable batch_done_;
  std::vector<std::shared_ptr<PendingCreate>> pending_creates_;  // under batch_mutex_
  bool committing_ = false;                                      // under batch_mutex_
  std::unique_ptr<db::Checkpointer> checkpointer_;
  std::string feed_epoch_;  // names this database in change-feed cursors
  std::mutex listener_mutex_;
  std::function<void(const std::string&)> change_listener_;
  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<db::Database>> readers_;
};

}  // namespace stargate::server
