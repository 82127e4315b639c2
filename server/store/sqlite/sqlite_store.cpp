// SqliteStore: schema, migrations and queries.
#include "server/store/sqlite/sqlite_store.hpp"

#include <sstream>

#include "server/store/sqlite/sqlite_rows.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"

namespace stargate::server {
namespace {

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE clients (
  client_id     TEXT PRIMARY KEY,
  tenant        TEXT NOT NULL,
  secret_hash   TEXT NOT NULL,
  process_types TEXT NOT NULL,          -- space separated
  created_at    INTEGER NOT NULL,       -- unix ms
  revoked       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE processes (
  seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
  process_id           TEXT NOT NULL UNIQUE,
  tenant               TEXT NOT NULL,
  client_id            TEXT NOT NULL,
  client_process_id    TEXT NOT NULL,
  process_type         TEXT NOT NULL,
  data                 TEXT NOT NULL,
  status               TEXT NOT NULL,
  progress             INTEGER NOT NULL DEFAULT 0,
  current_step         TEXT NOT NULL DEFAULT '',
  result               TEXT,
  error                TEXT,
  retryable            INTEGER NOT NULL DEFAULT 0,
  attempt              INTEGER NOT NULL DEFAULT 1,
  queued               INTEGER NOT NULL DEFAULT 1,  -- 1 while it waits for a worker
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  finished_at          INTEGER,
  estimated_completion INTEGER
);
CREATE INDEX processes_queue ON processes (seq) WHERE queued = 1;
CREATE INDEX processes_tenant ON processes (tenant, seq);
CREATE TABLE idempotency_keys (
  tenant       TEXT NOT NULL,
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  process_id   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (tenant, key)
);
CREATE TABLE id_sequence (
  day  TEXT PRIMARY KEY,   -- YYYYMMDD
  next INTEGER NOT NULL
);
)sql";

// v2: refresh tokens, rotated within families; a reused token revokes its family.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE token_families (
  family     TEXT PRIMARY KEY,
  client_id  TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE refresh_tokens (
  hash       TEXT PRIMARY KEY,      -- SHA-256 of the token; the token itself is never stored
  family     TEXT NOT NULL REFERENCES token_families (family),
  scopes     TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
)sql";

// v3: the audit trail, a hash chain.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  time      INTEGER NOT NULL,    -- unix ms, for --since
  record    TEXT NOT NULL,       -- the JSON text that was hashed
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
CREATE INDEX audit_time ON audit (time);
)sql";

// v4: the correlation id of the submitting request, carried into the engine's logs.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE processes ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';
)sql";

// v5: stock reservations of the order handler, and their sum per SKU.
constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE stock_reservations (
  process_id TEXT NOT NULL,
  sku        TEXT NOT NULL,
  quantity   INTEGER NOT NULL,
  PRIMARY KEY (process_id, sku)
);
CREATE TABLE stock_reserved (
  sku      TEXT PRIMARY KEY,
  reserved INTEGER NOT NULL
);
)sql";

// v6: the change feed. Every change of a process gives it the next change_seq; `epoch`
// names this database in cursors, so that a cursor from another one is not mistaken for ours.
constexpr const char* kSchemaV6 = R"sql(
ALTER TABLE processes ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
UPDATE processes SET change_seq = seq;
CREATE INDEX processes_changes ON processes (tenant, change_seq);
CREATE TABLE change_feed (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  epoch    TEXT NOT NULL,
  last_seq INTEGER NOT NULL
);
INSERT INTO change_feed (id, epoch, last_seq)
  VALUES (1, lower(hex(randomblob(8))), (SELECT coalesce(max(seq), 0) FROM processes));
)sql";

// v7: a rotated client secret, accepted beside the new one until its grace ends.
constexpr const char* kSchemaV7 = R"sql(
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN previous_secret_until INTEGER;  -- unix ms
)sql";

}  // namespace

ProcessRecord rows::read_process(const db::Statement& row) {
  ProcessRecord record;
  auto& view = record.view;
  view.process_id = row.text(0);
  record.tenant = row.text(1);
  record.client_id = row.text(2);
  view.client_process_id = row.text(3);
  view.process_type = row.text(4);
  record.data = nlohmann::json::parse(row.text(5));
  view.status = parse_process_status(row.text(6)).value_or(ProcessStatus::kFailed);
  view.progress = static_cast<int>(row.integer(7));
  view.current_step = row.text(8);
  if (auto result = row.optional_text(9)) view.result = nlohmann::json::parse(*result);
  if (auto error = row.optional_text(10)) {
    auto parsed = parse_process_error(nlohmann::json::parse(*error));
    if (parsed) view.error = std::move(*parsed);
  }
  view.retryable = row.integer(11) != 0;
  record.attempt = static_cast<int>(row.integer(12));
  view.created_at = from_unix_ms(row.integer(13));
  view.updated_at = from_unix_ms(row.integer(14));
  if (auto finished = row.optional_integer(15)) view.finished_at = from_unix_ms(*finished);
  if (auto estimate = row.optional_integer(16)) view.estimated_completion = from_unix_ms(*estimate);
  record.correlation_id = row.text(17);
  return record;
}

SqliteStore::ReadLease::~ReadLease() {
  if (db_ == nullptr) return;
  std::lock_guard lock(store_.readers_mutex_);
  store_.readers_.push_back(std::move(db_));
}

SqliteStore::ReadLease SqliteStore::reader() {
  {
    std::lock_guard lock(readers_mutex_);
    if (!readers_.empty()) {
      auto db = std::move(readers_.back());
      readers_.pop_back();
      return ReadLease(*this, std::move(db));
    }
  }
  return ReadLease(*this,
                   std::make_unique<db::Database>(db_.path(), 5000, db::Database::Mode::kReadOnly));
}

Expected<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  try {
    std::unique_ptr<SqliteStore> store(new SqliteStore(db::Database(path)));
    store->migrate();
    store->load_feed_epoch();
    store->db_.disable_autocheckpoint();
    store->checkpointer_ = std::make_unique<db::Checkpointer>(path, std::chrono::seconds(1));
    return store;
  } catch (const db::DbError& e) {
    return fail(e.what());
  } catch (const std::runtime_error& e) {
    return fail(e.what());
  }
}

void SqliteStore::migrate() {
  db::Transaction tx(db_);
  const int version = db_.user_version();
  if (version > kSchemaVersion) {
    throw std::runtime_error(db_.path() + ": schema version " + std::to_string(version) +
                             " is newer than this stargate-server understands (" +
                             std::to_string(kSchemaVersion) + "); upgrade stargate-server");
  }
  if (version < 1) db_.exec(kSchemaV1);
  if (version < 2) db_.exec(kSchemaV2);
  if (version < 3) db_.exec(kSchemaV3);
  if (version < 4) db_.exec(kSchemaV4);
  if (version < 5) db_.exec(kSchemaV5);
  if (version < 6) db_.exec(kSchemaV6);
  if (version < 7) db_.exec(kSchemaV7);
  db_.set_user_version(kSchemaVersion);
  tx.commit();
}

std::string SqliteStore::next_process_id(TimePoint now) {
  const std::string day = format_process_id(now, 0).substr(5, 8);
  auto stmt = db_.prepare(
      "INSERT INTO id_sequence (day, next) VALUES (?, 1) "
      "ON CONFLICT (day) DO UPDATE SET next = next + 1 RETURNING next");
  stmt.bind(1, day);
  stmt.step();
  return format_process_id(now, static_cast<std::uint64_t>(stmt.integer(0)));
}

std::string SqliteStore::tenant_of(const std::string& process_id) {
  auto stmt = db_.prepare("SELECT tenant FROM processes WHERE process_id = ?");
  stmt.bind(1, process_id);
  return stmt.step() ? stmt.text(0) : std::string();
}

std::optional<ProcessRecord> SqliteStore::load_process(db::Database& db,
                                                       const std::string& process_id) {
  auto stmt = db.prepare(std::string("SELECT ") + rows::kProcessColumns +
                         " FROM processes WHERE process_id = ?");
  stmt.bind(1, process_id);
  if (!stmt.step()) return std::nullopt;
  return rows::read_process(stmt);
}

// Group commit: concurrent submissions share one transaction, so one fsync acknowledges
// many of them. The first caller to find no commit under way becomes the leader, commits
// everything queued so far, and hands over; the others wait for their own result. An idle
// server commits a lone request at once, with no added delay.
Expected<Insertion> SqliteStore::create_process(const NewProcess& process) {
  auto item = std::make_shared<PendingCreate>(process);
  std::unique_lock lock(batch_mutex_);
  pending_creates_.push_back(item);
  batch_done_.wait(lock, [&] { return item->done || !committing_; });
  if (item->done) return std::move(item->result);
  committing_ = true;
  std::vector<std::shared_ptr<PendingCreate>> batch;
  batch.swap(pending_creates_);
  lock.unlock();
  commit_creates(batch);
  lock.lock();
  for (auto& done : batch)
    done->done = true;
  committing_ = false;
  lock.unlock();
  batch_done_.notify_all();
  return std::move(item->result);
}

void SqliteStore::commit_creates(std::vector<std::shared_ptr<PendingCreate>>& batch) {
  std::lock_guard lock(mutex_);
  try {
    db::Transaction tx(db_);
    for (auto& item : batch) {
      // A failure of one request (a constraint, say) must not fail its neighbours.
      db_.prepare("SAVEPOINT create_one").run();
      try {
        item->result = create_locked(item->process);
        db_.prepare("RELEASE create_one").run();
      } catch (const std::exception& e) {
        db_.exec("ROLLBACK TO create_one");
        db_.exec("RELEASE create_one");
        item->result = fail(std::string("store: ") + e.what());
      }
    }
    tx.commit();
  } catch (const std::exception& e) {
    for (auto& item : batch)
      item->result = fail(std::string("store: ") + e.what());
    return;
  }
  for (auto& item : batch) {
    if (item->result && item->result->inserted) announce(item->process.tenant);
  }
}

Expected<Insertion> SqliteStore::create_locked(const NewProcess& process) {
  const auto& request = process.request;
  if (!request.idempotency_key.empty()) {
    auto lookup = db_.prepare(
        "SELECT request_hash, process_id FROM idempotency_keys WHERE tenant = ? AND key = ?");
    lookup.bind(1, process.tenant).bind(2, request.idempotency_key);
    if (lookup.step()) {
      Insertion result;
      result.inserted = false;
      result.held_request_hash = lookup.text(0);
      auto existing = load_process(db_, lookup.text(1));
      if (!existing) return fail("store: idempotency key points to a missing process");
      result.process = std::move(*existing);
      return result;
    }
  }
  const std::string id = next_process_id(process.now);
  db_.prepare(
         "INSERT INTO processes (process_id, tenant, client_id, client_process_id, "
         "process_type, data, status, created_at, updated_at, estimated_completion, "
         "correlation_id, change_seq) VALUES (?, ?, ?, ?, ?, ?, 'accepted', ?, ?, ?, ?, ?)")
      .bind(1, id)
      .bind(2, process.tenant)
      .bind(3, process.client_id)
      .bind(4, request.client_process_id)
      .bind(5, request.process_type)
      .bind(6, dump_json(request.data))
      .bind(7, to_unix_ms(process.now))
      .bind(8, to_unix_ms(process.now))
      .bind(9, rows::unix_ms_or_null(process.estimated_completion))
      .bind(10, process.correlation_id)
      .bind(11, next_change_locked())
      .run();
  if (!request.idempotency_key.empty()) {
    db_.prepare(
           "INSERT INTO idempotency_keys (tenant, key, request_hash, process_id, created_at) "
           "VALUES (?, ?, ?, ?, ?)")
        .bind(1, process.tenant)
        .bind(2, request.idempotency_key)
        .bind(3, process.request_hash)
        .bind(4, id)
        .bind(5, to_unix_ms(process.now))
        .run();
  }
  audit_state(id, process.tenant, nullptr, "accepted", process.now);
  // The new record is what was just written; no need to read it back.
  Insertion created;
  created.process.tenant = process.tenant;
  created.process.client_id = process.client_id;
  created.process.data = request.data;
  created.process.correlation_id = process.correlation_id;
  auto& view = created.process.view;
  view.process_id = id;
  view.client_process_id = request.client_process_id;
  view.process_type = request.process_type;
  view.status = ProcessStatus::kAccepted;
  view.created_at = view.updated_at = process.now;
  view.estimated_completion = process.estimated_completion;
  return created;
}

Expected<std::optional<ProcessRecord>> SqliteStore::get_process(const std::string& tenant,
                                                                const std::string& process_id) {
  return db::guarded("store", [&]() -> Expected<std::optional<ProcessRecord>> {
    auto lease = reader();
    db::Database& db = lease.db();
    auto record = load_process(db, process_id);
    if (record && record->tenant != tenant) return std::optional<ProcessRecord>{};
    return record;
  });
}

Expected<std::vector<ProcessRecord>> SqliteStore::list_processes(const ListQuery& query) {
  return db::guarded("store", [&]() -> Expected<std::vector<ProcessRecord>> {
    auto lease = reader();
    db::Database& db = lease.db();
    std::string sql = std::string("SELECT ") + rows::kProcessColumns +
                      " FROM processes WHERE tenant = ?1"
                      " AND (?2 IS NULL OR status = ?2)"
                      " AND (?3 = '' OR process_type = ?3)"
                      " AND (?4 = '' OR seq < (SELECT seq FROM processes WHERE process_id = ?4"
                      " AND tenant = ?1))"
                      " ORDER BY seq DESC LIMIT ?5";
    auto stmt = db.prepare(sql);
    stmt.bind(1, query.tenant);
    if (query.status) {
      stmt.bind(2, to_string(*query.status));
    } else {
      stmt.bind_null(2);
    }
    stmt.bind(3, query.process_type).bind(4, query.cursor);
    stmt.bind(5, static_cast<std::int64_t>(query.limit));
    std::vector<ProcessRecord> out;
    while (stmt.step())
      out.push_back(rows::read_process(stmt));
    return out;
  });
}

Expected<Store::RetryOutcome> SqliteStore::retry_process(
    const std::string& tenant, const std::string& process_id, TimePoint now,
    std::optional<TimePoint> estimated_completion) {
  return db::guarded("store", [&]() -> Expected<RetryOutcome> {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    auto record = load_process(db_, process_id);
    if (!record || record->tenant != tenant) return RetryOutcome::kNotFound;
    if (!check_transition(record->view.status, ProcessStatus::kAccepted, record->view.retryable)) {
      return RetryOutcome::kNotRetryable;
    }
    db_.prepare(
           "UPDATE processes SET status = 'accepted', queued = 1, attempt = attempt + 1, "
           "progress = 0, current_step = '', result = NULL, error = NULL, retryable = 0, "
           "finished_at = NULL, updated_at = ?, estimated_completion = ?, change_seq = ? "
           "WHERE process_id = ?")
        .bind(1, to_unix_ms(now))
        .bind(2, rows::unix_ms_or_null(estimated_completion))
        .bind(3, next_change_locked())
        .bind(4, process_id)
        .run();
    audit_state(process_id, tenant, "failed", "accepted", now);
    tx.commit();
    announce(tenant);
    return RetryOutcome::kRetried;
  });
}

Expected<std::size_t> SqliteStore::prune_idempotency_keys(TimePoint before) {
  return db::guarded("store", [&]() -> Expected<std::size_t> {
    std::lock_guard lock(mutex_);
    db_.prepare("DELETE FROM idempotency_keys WHERE created_at < ?")
        .bind(1, to_unix_ms(before))
        .run();
    return static_cast<std::size_t>(db_.changes());
  });
}

Expected<std::optional<ProcessRecord>> SqliteStore::claim_next(TimePoint now) {
  return db::guarded("store", [&]() -> Expected<std::optional<ProcessRecord>> {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    auto next =
        db_.prepare("SELECT process_id FROM processes WHERE queued = 1 ORDER BY seq LIMIT 1");
    if (!next.step()) return std::optional<ProcessRecord>{};
    const std::string id = next.text(0);
    db_.prepare(
           "UPDATE processes SET queued = 0, status = 'processing', updated_at = ?, "
           "change_seq = ? WHERE process_id = ?")
        .bind(1, to_unix_ms(now))
        .bind(2, next_change_locked())
        .bind(3, id)
        .run();
    auto record = load_process(db_, id);
    audit_state(id, record->tenant, "accepted", "processing", now);
    tx.commit();
    announce(record->tenant);
    return record;
  });
}

Status SqliteStore::update_progress(const std::string& process_id, int progress,
                                    const std::string& step, TimePoint now) {
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    // An update that changes nothing is no change for the feed either.
    db_.prepare(
           "UPDATE processes SET progress = ?1, current_step = ?2, updated_at = ?3, "
           "change_seq = (SELECT last_seq + 1 FROM change_feed) "
           "WHERE process_id = ?4 AND status = 'processing' "
           "AND (progress != ?1 OR current_step != ?2)")
        .bind(1, progress)
        .bind(2, step)
        .bind(3, to_unix_ms(now))
        .bind(4, process_id)
        .run();
    if (db_.changes() != 1) return {};
    next_change_locked();
    const std::string tenant = tenant_of(process_id);
    tx.commit();
    announce(tenant);
    return {};
  });
}

Status SqliteStore::complete(const std::string& process_id, const nlohmann::json& result,
                             TimePoint now) {
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    db_.prepare(
           "UPDATE processes SET status = 'completed', progress = 100, result = ?, "
           "updated_at = ?, finished_at = ?, change_seq = ? "
           "WHERE process_id = ? AND status = 'processing'")
        .bind(1, dump_json(result))
        .bind(2, to_unix_ms(now))
        .bind(3, to_unix_ms(now))
        .bind(4, next_change_locked())
        .bind(5, process_id)
        .run();
    if (db_.changes() != 1) return fail("store: process " + process_id + " is not processing");
    const std::string tenant = tenant_of(process_id);
    audit_state(process_id, tenant, "processing", "completed", now);
    tx.commit();
    announce(tenant);
    return {};
  });
}

Status SqliteStore::fail_process(const std::string& process_id, const ProcessError& error,
                                 bool retryable, TimePoint now) {
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    db_.prepare(
           "UPDATE processes SET status = 'failed', error = ?, retryable = ?, updated_at = ?, "
           "finished_at = ?, change_seq = ? WHERE process_id = ? AND status = 'processing'")
        .bind(1, dump_json(to_json(error)))
        .bind(2, retryable ? 1 : 0)
        .bind(3, to_unix_ms(now))
        .bind(4, to_unix_ms(now))
        .bind(5, next_change_locked())
        .bind(6, process_id)
        .run();
    if (db_.changes() != 1) return fail("store: process " + process_id + " is not processing");
    const std::string tenant = tenant_of(process_id);
    audit_state(process_id, tenant, "processing", "failed", now);
    tx.commit();
    announce(tenant);
    return {};
  });
}

Expected<ProcessCounts> SqliteStore::process_counts() {
  return db::guarded("store", [&]() -> Expected<ProcessCounts> {
    auto lease = reader();
    db::Database& db = lease.db();
    ProcessCounts counts;
    auto by_status = db.prepare("SELECT status, count(*) FROM processes GROUP BY status");
    while (by_status.step())
      counts.by_status[by_status.text(0)] = by_status.integer(1);
    auto queued = db.prepare("SELECT count(*) FROM processes WHERE queued = 1");
    queued.step();
    counts.queued = queued.integer(0);
    return counts;
  });
}

Expected<std::optional<TimePoint>> SqliteStore::oldest_queued() {
  return db::guarded("store", [&]() -> Expected<std::optional<TimePoint>> {
    auto lease = reader();
    auto head = lease.db().prepare(
        "SELECT updated_at FROM processes WHERE queued = 1 ORDER BY seq LIMIT 1");
    if (!head.step()) return std::optional<TimePoint>{};
    return std::optional<TimePoint>{from_unix_ms(head.integer(0))};
  });
}

Status SqliteStore::check_writable() {
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    // Take the write lock and give it back. A probe must answer quickly, so it waits for
    // another program's lock less long than a real write does.
    db_.set_busy_timeout(1000);
    struct Restore {
      db::Database& db;
      ~Restore() { db.set_busy_timeout(db::Database::kDefaultBusyTimeoutMs); }
    } restore{db_};
    db_.exec("BEGIN IMMEDIATE");
    db_.exec("ROLLBACK");
    return {};
  });
}

Expected<std::size_t> SqliteStore::requeue_interrupted(TimePoint now) {
  return db::guarded("store", [&]() -> Expected<std::size_t> {
    std::lock_guard lock(mutex_);
    db_.prepare(
           "UPDATE processes SET queued = 1, updated_at = ? "
           "WHERE status = 'processing' AND queued = 0")
        .bind(1, to_unix_ms(now))
        .run();
    return static_cast<std::size_t>(db_.changes());
  });
}

}  // namespace stargate::server
