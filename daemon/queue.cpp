// The SQLite queue: schema, migrations and state changes.
#include "daemon/queue.hpp"

#include <filesystem>

#include "shared/ids.hpp"
#include "shared/json.hpp"

namespace stargate::daemon {
namespace {

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE requests (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  client_process_id TEXT NOT NULL UNIQUE,
  process_type      TEXT NOT NULL,
  data              TEXT NOT NULL,
  idempotency_key   TEXT NOT NULL,
  state             TEXT NOT NULL,
  process_id        TEXT,
  progress          INTEGER NOT NULL DEFAULT 0,
  current_step      TEXT NOT NULL DEFAULT '',
  result            TEXT,
  error             TEXT,
  retryable         INTEGER NOT NULL DEFAULT 0,
  attempts          INTEGER NOT NULL DEFAULT 0,
  last_error        TEXT NOT NULL DEFAULT '',
  created_at        INTEGER NOT NULL,   -- unix ms
  submitted_at      INTEGER,
  updated_at        INTEGER NOT NULL,
  completed_at      INTEGER,
  hook_done         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX requests_state ON requests (state, seq);
)sql";

// v2: pruning finds finished records by their end time instead of scanning the table.
constexpr const char* kSchemaV2 = R"sql(
CREATE INDEX requests_finished ON requests (completed_at) WHERE completed_at IS NOT NULL;
)sql";

// v3: where the gateway's change feed was last read, per gateway URL, so that a restarted
// daemon goes on from there and a daemon pointed at another gateway does not.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE feed_cursors (
  gateway    TEXT PRIMARY KEY,
  cursor     TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
)sql";

constexpr const char* kColumns =
    "seq, client_process_id, process_type, data, idempotency_key, state, process_id, progress, "
    "current_step, result, error, retryable, attempts, last_error, created_at, submitted_at, "
    "updated_at, completed_at, hook_done";

LocalRecord read_record(const db::Statement& row) {
  LocalRecord r;
  r.seq = row.integer(0);
  r.client_process_id = row.text(1);
  r.process_type = row.text(2);
  r.data = nlohmann::json::parse(row.text(3));
  r.idempotency_key = row.text(4);
  r.state = parse_local_state(row.text(5)).value_or(LocalState::kFailed);
  r.process_id = row.optional_text(6).value_or("");
  r.progress = static_cast<int>(row.integer(7));
  r.current_step = row.text(8);
  if (auto result = row.optional_text(9)) r.result = nlohmann::json::parse(*result);
  if (auto error = row.optional_text(10)) r.error = nlohmann::json::parse(*error);
  r.retryable = row.integer(11) != 0;
  r.attempts = static_cast<int>(row.integer(12));
  r.last_error = row.text(13);
  r.created_at = from_unix_ms(row.integer(14));
  if (auto t = row.optional_integer(15)) r.submitted_at = from_unix_ms(*t);
  r.updated_at = from_unix_ms(row.integer(16));
  if (auto t = row.optional_integer(17)) r.completed_at = from_unix_ms(*t);
  r.hook_done = row.integer(18) != 0;
  return r;
}

}  // namespace

Expected<std::unique_ptr<Queue>> Queue::open(const std::string& path, const Clock& clock) {
  try {
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    std::unique_ptr<Queue> queue(new Queue(db::Database(path), clock));
    queue->migrate();
    queue->db_.disable_autocheckpoint();
    queue->checkpointer_ = std::make_unique<db::Checkpointer>(path, std::chrono::seconds(1));
    return queue;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

void Queue::migrate() {
  db::Transaction tx(db_);
  const int version = db_.user_version();
  if (version > kSchemaVersion) {
    throw std::runtime_error(db_.path() + ": queue schema version " + std::to_string(version) +
                             " is newer than this stargated understands (" +
                             std::to_string(kSchemaVersion) + "); upgrade stargated");
  }
  if (version < 1) db_.exec(kSchemaV1);
  if (version < 2) db_.exec(kSchemaV2);
  if (version < 3) db_.exec(kSchemaV3);
  db_.set_user_version(kSchemaVersion);
  tx.commit();
}

std::optional<LocalRecord> Queue::load(const std::string& id) {
  auto stmt =
      db_.prepare(std::string("SELECT ") + kColumns + " FROM requests WHERE client_process_id = ?");
  stmt.bind(1, id);
  if (!stmt.step()) return std::nullopt;
  return read_record(stmt);
}

Expected<EnqueueResult> Queue::enqueue(const NewRequest& request) {
  return std::move(enqueue_batch({request}).front());
}

std::vector<Expected<EnqueueResult>> Queue::enqueue_batch(const std::vector<NewRequest>& requests) {
  std::vector<Expected<EnqueueResult>> results;
  try {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    for (const auto& request : requests) {
      db_.prepare("SAVEPOINT enqueue_one").run();
      try {
        results.emplace_back(enqueue_locked(request));
        db_.prepare("RELEASE enqueue_one").run();
      } catch (const std::exception& e) {
        db_.prepare("ROLLBACK TO enqueue_one").run();
        db_.prepare("RELEASE enqueue_one").run();
        results.emplace_back(fail(std::string("queue: ") + e.what()));
      }
    }
    tx.commit();  // durable (synchronous=FULL) before any caller acknowledges
  } catch (const std::exception& e) {
    results.clear();
    for (std::size_t i = 0; i < requests.size(); ++i) {
      results.emplace_back(fail(std::string("queue: ") + e.what()));
    }
  }
  return results;
}

EnqueueResult Queue::enqueue_locked(const NewRequest& request) {
  const std::string id = request.client_process_id.empty() ? new_uuid() : request.client_process_id;
  const auto now = clock_.now();
  LocalRecord record;
  record.client_process_id = id;
  record.process_type = request.process_type;
  record.data = request.data;
  record.idempotency_key = new_uuid();
  record.created_at = record.updated_at = now;
  // One statement both checks and inserts: a known id changes nothing.
  auto insert = db_.prepare(
      "INSERT INTO requests (client_process_id, process_type, data, idempotency_key, state, "
      "created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?) "
      "ON CONFLICT (client_process_id) DO NOTHING RETURNING seq");
  insert.bind(1, id)
      .bind(2, request.process_type)
      .bind(3, dump_json(request.data))
      .bind(4, record.idempotency_key)
      .bind(5, to_unix_ms(now))
      .bind(6, to_unix_ms(now));
  if (!insert.step()) return EnqueueResult{std::move(*load(id)), true};
  record.seq = insert.integer(0);
  while (insert.step()) {
  }
  return EnqueueResult{std::move(record), false};
}

Expected<std::optional<LocalRecord>> Queue::get(const std::string& id) {
  return db::guarded("queue", [&]() -> Expected<std::optional<LocalRecord>> {
    std::lock_guard lock(mutex_);
    return load(id);
  });
}

Expected<std::vector<LocalRecord>> Queue::list(const ListFilter& filter) {
  return db::guarded("queue", [&]() -> Expected<std::vector<LocalRecord>> {
    std::lock_guard lock(mutex_);
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns +
                            " FROM requests WHERE (?1 IS NULL OR state = ?1)"
                            " AND (?2 = '' OR process_type = ?2) ORDER BY seq " +
                            (filter.oldest_first ? "ASC" : "DESC") + " LIMIT ?3");
    if (filter.state) {
      stmt.bind(1, to_string(*filter.state));
    } else {
      stmt.bind_null(1);
    }
    stmt.bind(2, filter.process_type).bind(3, static_cast<std::int64_t>(filter.limit));
    std::vector<LocalRecord> out;
    while (stmt.step())
      out.push_back(read_record(stmt));
    return out;
  });
}

Expected<std::optional<LocalRecord>> Queue::next_queued() {
  return db::guarded("queue", [&]() -> Expected<std::optional<LocalRecord>> {
    std::lock_guard lock(mutex_);
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns +
                            " FROM requests WHERE state = 'queued' ORDER BY seq LIMIT 1");
    if (!stmt.step()) return std::optional<LocalRecord>{};
    return std::optional<LocalRecord>{read_record(stmt)};
  });
}

Expected<std::vector<LocalRecord>> Queue::active() {
  return db::guarded("queue", [&]() -> Expected<std::vector<LocalRecord>> {
    std::lock_guard lock(mutex_);
    auto stmt =
        db_.prepare(std::string("SELECT ") + kColumns +
                    " FROM requests WHERE state IN ('accepted', 'processing') ORDER BY seq");
    std::vector<LocalRecord> out;
    while (stmt.step())
      out.push_back(read_record(stmt));
    return out;
  });
}

Expected<std::size_t> Queue::count(LocalState state) {
  return db::guarded("queue", [&]() -> Expected<std::size_t> {
    std::lock_guard lock(mutex_);
    auto stmt = db_.prepare("SELECT count(*) FROM requests WHERE state = ?");
    stmt.bind(1, to_string(state));
    stmt.step();
    return static_cast<std::size_t>(stmt.integer(0));
  });
}

template <typename F>
Status Queue::transition(const std::string& id, LocalState to, bool retryable, F&& update) {
  return db::guarded("queue", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    auto record = load(id);
    if (!record) return fail("no such request: " + id);
    if (auto allowed = check_transition(record->state, to, retryable); !allowed) {
      return fail(id + ": " + allowed.error());
    }
    update(*record, to_unix_ms(clock_.now()));
    tx.commit();
    return {};
  });
}

Status Queue::record_send_failure(const std::string& id, const std::string& reason) {
  return transition(id, LocalState::kQueued, false, [&](const LocalRecord&, std::int64_t now) {
    db_.prepare(
           "UPDATE requests SET attempts = attempts + 1, last_error = ?, updated_at = ? "
           "WHERE client_process_id = ?")
        .bind(1, reason.substr(0, 1000))
        .bind(2, now)
        .bind(3, id)
        .run();
  });
}

Status Queue::mark_accepted(const std::string& id, const Accepted& accepted) {
  return transition(id, LocalState::kAccepted, false, [&](const LocalRecord&, std::int64_t now) {
    db_.prepare(
           "UPDATE requests SET state = 'accepted', process_id = ?, attempts = attempts + 1, "
           "last_error = '', submitted_at = ?, updated_at = ? WHERE client_process_id = ?")
        .bind(1, accepted.process_id)
        .bind(2, now)
        .bind(3, now)
        .bind(4, id)
        .run();
  });
}

Status Queue::mark_rejected(const std::string& id, const nlohmann::json& error) {
  return transition(id, LocalState::kRejected, false, [&](const LocalRecord&, std::int64_t now) {
    db_.prepare(
           "UPDATE requests SET state = 'rejected', error = ?, attempts = attempts + 1, "
           "updated_at = ?, completed_at = ? WHERE client_process_id = ?")
        .bind(1, dump_json(error))
        .bind(2, now)
        .bind(3, now)
        .bind(4, id)
        .run();
  });
}

Expected<bool> Queue::apply_status(const std::string& id, const ProcessView& view) {
  return db::guarded("queue", [&]() -> Expected<bool> {
    std::lock_guard lock(mutex_);
    auto record = load(id);
    if (!record) return fail("no such request: " + id);
    const LocalState to = to_local_state(view.status);
    const int progress = view.status == ProcessStatus::kCompleted ? 100 : view.progress;
    if (record->state == to && record->progress == progress &&
        record->current_step == view.current_step && record->last_error.empty()) {
      return false;
    }
    if (auto allowed = check_transition(record->state, to); !allowed) {
      return fail(id + ": " + allowed.error());
    }
    std::optional<std::int64_t> completed;
    const auto now = to_unix_ms(clock_.now());
    if (is_terminal(to)) completed = now;
    std::optional<std::string> result, error;
    if (!view.result.is_null()) result = dump_json(view.result);
    if (view.error) error = dump_json(to_json(*view.error));
    db::Transaction tx(db_);
    db_.prepare(
           "UPDATE requests SET state = ?, progress = ?, current_step = ?, result = ?, "
           "error = ?, retryable = ?, last_error = '', updated_at = ?, completed_at = ? "
           "WHERE client_process_id = ?")
        .bind(1, to_string(to))
        .bind(2, progress)
        .bind(3, view.current_step)
        .bind(4, result)
        .bind(5, error)
        .bind(6, view.retryable ? 1 : 0)
        .bind(7, now)
        .bind(8, completed)
        .bind(9, id)
        .run();
    tx.commit();
    return true;
  });
}

Status Queue::record_poll_failure(const std::string& id, const std::string& reason) {
  return db::guarded("queue", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db_.prepare("UPDATE requests SET last_error = ?, updated_at = ? WHERE client_process_id = ?")
        .bind(1, reason.substr(0, 1000))
        .bind(2, to_unix_ms(clock_.now()))
        .bind(3, id)
        .run();
    if (db_.changes() != 1) return fail("no such request: " + id);
    return {};
  });
}

Status Queue::mark_retried(const std::string& id) {
  return db::guarded("queue", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    auto record = load(id);
    if (!record) return fail("no such request: " + id);
    if (record->state != LocalState::kFailed) {
      return fail(id + " is " + std::string(to_string(record->state)) + ", not failed");
    }
    if (auto allowed = check_transition(record->state, LocalState::kAccepted, record->retryable);
        !allowed) {
      return fail(id + ": " + allowed.error());
    }
    db_.prepare(
           "UPDATE requests SET state = 'accepted', progress = 0, current_step = '', "
           "result = NULL, error = NULL, retryable = 0, last_error = '', completed_at = NULL, "
           "hook_done = 0, updated_at = ? WHERE client_process_id = ?")
        .bind(1, to_unix_ms(clock_.now()))
        .bind(2, id)
        .run();
    tx.commit();
    return {};
  });
}

Expected<std::vector<LocalRecord>> Queue::hooks_due() {
  return db::guarded("queue", [&]() -> Expected<std::vector<LocalRecord>> {
    std::lock_guard lock(mutex_);
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns +
                            " FROM requests WHERE hook_done = 0 AND state IN ('completed', "
                            "'failed', 'rejected', 'cancelled') ORDER BY seq");
    std::vector<LocalRecord> out;
    while (stmt.step())
      out.push_back(read_record(stmt));
    return out;
  });
}

Status Queue::mark_hook_done(const std::string& id) {
  return db::guarded("queue", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db_.prepare("UPDATE requests SET hook_done = 1 WHERE client_process_id = ?").bind(1, id).run();
    if (db_.changes() != 1) return fail("no such request: " + id);
    return {};
  });
}

Expected<std::string> Queue::feed_cursor(const std::string& gateway) {
  return db::guarded("queue", [&]() -> Expected<std::string> {
    std::lock_guard lock(mutex_);
    auto stmt = db_.prepare("SELECT cursor FROM feed_cursors WHERE gateway = ?");
    stmt.bind(1, gateway);
    return stmt.step() ? stmt.text(0) : std::string();
  });
}

Status Queue::save_feed_cursor(const std::string& gateway, const std::string& cursor) {
  return db::guarded("queue", [&]() -> Status {
    std::lock_guard lock(mutex_);
    if (cursor.empty()) {
      db_.prepare("DELETE FROM feed_cursors WHERE gateway = ?").bind(1, gateway).run();
      return {};
    }
    db_.prepare(
           "INSERT INTO feed_cursors (gateway, cursor, updated_at) VALUES (?, ?, ?) "
           "ON CONFLICT (gateway) DO UPDATE SET cursor = excluded.cursor, "
           "updated_at = excluded.updated_at")
        .bind(1, gateway)
        .bind(2, cursor)
        .bind(3, to_unix_ms(clock_.now()))
        .run();
    return {};
  });
}

Expected<std::size_t> Queue::prune(TimePoint before) {
  return db::guarded("queue", [&]() -> Expected<std::size_t> {
    std::lock_guard lock(mutex_);
    db_.prepare(
           "DELETE FROM requests WHERE hook_done = 1 AND completed_at IS NOT NULL "
           "AND completed_at < ? AND state IN ('completed', 'failed', 'rejected', 'cancelled')")
        .bind(1, to_unix_ms(before))
        .run();
    return static_cast<std::size_t>(db_.changes());
  });
}

Status Queue::cancel(const std::string& id) {
  return transition(id, LocalState::kCancelled, false, [&](const LocalRecord&, std::int64_t now) {
    db_.prepare(
           "UPDATE requests SET state = 'cancelled', updated_at = ?, completed_at = ? "
           "WHERE client_process_id = ?")
        .bind(1, now)
        .bind(2, now)
        .bind(3, id)
        .run();
  });
}

}  // namespace stargate::daemon
