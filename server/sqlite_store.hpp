// The embedded store: everything in one SQLite file (WAL, fsync on commit). Threads share
// one connection behind a mutex; SQLite serialises writers anyway.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "server/store.hpp"
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
  Status add_refresh_token(const RefreshToken& token) override;
  Expected<RefreshResult> rotate_refresh_token(const std::string& hash,
                                               const std::string& next_hash, TimePoint next_expiry,
                                               TimePoint now) override;
  Expected<bool> token_usable(const std::string& client_id, const std::string& family) override;
  Expected<CreateResult> create_process(const NewProcess& process) override;
  Expected<std::optional<ProcessRecord>> get_process(const std::string& tenant,
                                                     const std::string& process_id) override;
  Expected<std::vector<ProcessRecord>> list_processes(const ListQuery& query) override;
  Expected<RetryOutcome> retry_process(const std::string& tenant, const std::string& process_id,
                                       TimePoint now) override;
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
  Status append_audit(const std::vector<AuditEvent>& events) override;
  Expected<AuditCheck> verify_audit() override;
  Status export_audit(TimePoint since,
                      const std::function<void(const AuditRecord&)>& sink) override;

  static constexpr int kSchemaVersion = 3;

 private:
  explicit SqliteStore(db::Database db) : db_(std::move(db)) {}
  void migrate();
  std::optional<ProcessRecord> load_process(const std::string& process_id);
  std::string next_process_id(TimePoint now);
  std::string tenant_of(const std::string& process_id);
  // Appends one audit record; the caller holds mutex_ and has a transaction open, so the
  // record commits together with the change it describes.
  void append_audit_locked(const AuditEvent& event);
  void audit_state(const std::string& process_id, const std::string& tenant, const char* from,
                   const char* to, TimePoint now);

  std::mutex mutex_;
  db::Database db_;
};

}  // namespace stargate::server
