// SqliteStore: the audit trail, a hash chain that makes edits and deletions detectable.
#include "server/common/digest.hpp"
#include "server/store/sqlite/sqlite_rows.hpp"
#include "server/store/sqlite/sqlite_store.hpp"

namespace stargate::server {
namespace {

const std::string kGenesis(64, '0');

std::string chain(const std::string& prev_hash, const std::string& record) {
  return sha256_hex(prev_hash + "\n" + record);
}

}  // namespace

void SqliteStore::append_audit_locked(const AuditEvent& event) {
  // Read the head inside the transaction: another process (an admin command) may have
  // appended since this one last did.
  auto head = db_.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  std::int64_t seq = 1;
  std::string prev = kGenesis;
  if (head.step()) {
    seq = head.integer(0) + 1;
    prev = head.text(1);
  }
  nlohmann::json record = event.fields;
  record["seq"] = seq;
  record["time"] = format_timestamp(event.time);
  record["kind"] = event.kind;
  const std::string text = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  db_.prepare("INSERT INTO audit (seq, time, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?)")
      .bind(1, seq)
      .bind(2, to_unix_ms(event.time))
      .bind(3, text)
      .bind(4, prev)
      .bind(5, chain(prev, text))
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

Expected<AuditCheck> SqliteStore::verify_audit() {
  return db::guarded("store", [&]() -> Expected<AuditCheck> {
    auto lease = reader();
    db::Database& db = lease.db();
    auto stmt = db.prepare("SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq");
    AuditCheck check;
    std::string prev = kGenesis;
    std::int64_t expected_seq = 1;
    while (stmt.step()) {
      const std::int64_t seq = stmt.integer(0);
      const std::string record = stmt.text(1);
      const std::string prev_hash = stmt.text(2);
      const std::string hash = stmt.text(3);
      std::string problem;
      if (seq != expected_seq) {
        problem = "record " + std::to_string(expected_seq) + " is missing";
      } else if (prev_hash != prev) {
        problem = "does not follow the record before it (one was edited or deleted)";
      } else if (chain(prev_hash, record) != hash) {
        problem = "its content does not match its hash (edited)";
      } else {
        auto parsed = nlohmann::json::parse(record, nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object() || parsed.value("seq", -1) != seq) {
          problem = "its sequence number was changed";
        }
      }
      if (!problem.empty()) {
        check.intact = false;
        check.bad_seq = seq;
        check.problem = problem;
        return check;
      }
      prev = hash;
      ++expected_seq;
      ++check.records;
    }
    check.head_hash = prev;
    return check;
  });
}

Status SqliteStore::export_audit(TimePoint since,
                                 const std::function<void(const AuditRecord&)>& sink) {
  return db::guarded("store", [&]() -> Status {
    auto lease = reader();
    db::Database& db = lease.db();
    auto stmt = db.prepare(
        "SELECT seq, time, record, prev_hash, hash FROM audit WHERE time >= ? ORDER BY seq");
    stmt.bind(1, to_unix_ms(since));
    while (stmt.step()) {
      sink({stmt.integer(0), from_unix_ms(stmt.integer(1)), stmt.text(2), stmt.text(3),
            stmt.text(4)});
    }
    return {};
  });
}

}  // namespace stargate::server
