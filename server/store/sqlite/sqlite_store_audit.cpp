// SqliteStore: the audit trail, a hash chain that makes edits and deletions detectable.
#include "server/store/audit_chain.hpp"
#include "server/store/sqlite/sqlite_rows.hpp"
#include "server/store/sqlite/sqlite_store.hpp"

namespace stargate::server {

void SqliteStore::append_audit_locked(const AuditEvent& event) {
  // Read the head inside the transaction: another process (an admin command) may have
  // appended since this one last did.
  auto head = db_.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  std::int64_t seq = 0;
  std::string prev = kAuditGenesis;
  if (head.step()) {
    seq = head.integer(0);
    prev = head.text(1);
  }
  const AuditRecord record = chain_audit_record(seq, prev, event);
  db_.prepare("INSERT INTO audit (seq, time, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?)")
      .bind(1, record.seq)
      .bind(2, to_unix_ms(record.time))
      .bind(3, record.record)
      .bind(4, record.prev_hash)
      .bind(5, record.hash)
      .run();
}

void SqliteStore::audit_state(const std::string& process_id, const std::string& tenant,
                              const char* from, const char* to, TimePoint now) {
  append_audit_locked({now,
                       "state",
                       {{"processId", process_id},
                        {"tenant", tenant},
                        {"from", from != nullptr ? nlohmann::json(from) : nlohmann::json()},
                        {"to", to}}});
}

Status SqliteStore::append_audit(const std::vector<AuditEvent>& events) {
  if (events.empty()) return {};
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    for (const auto& event : events)
      append_audit_locked(event);
    tx.commit();
    return {};
  });
}

Status SqliteStore::scan_audit(TimePoint since,
                               const std::function<void(const AuditRecord&)>& sink) {
  return db::guarded("store", [&]() -> Status {
    auto lease = reader();
    db::Database& db = lease.db();
    auto stmt = db.prepare(
        "SELECT seq, time, record, prev_hash, hash FROM audit WHERE time >= ? ORDER BY seq");
    stmt.bind(1, to_unix_ms(since));
    while (stmt.step()) {
      sink({"", stmt.integer(0), from_unix_ms(stmt.integer(1)), stmt.text(2), stmt.text(3),
            stmt.text(4)});
    }
    return {};
  });
}

}  // namespace stargate::server
