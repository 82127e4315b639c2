// MongoStore: processes, idempotency keys and readiness (process ids: mongo_store_ids.cpp).
#include "server/store/mongo/mongo_store.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>
#include "server/store/audit_chain.hpp"
#include "server/store/mongo/mongo_rows.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"

namespace stargate::server {

using nlohmann::json;
using namespace mongo;

Expected<std::unique_ptr<MongoStore>> MongoStore::open(const std::string& uri, Duration lease,
                                                       std::string worker) {
  auto client = Client::open(uri);
  if (!client) return Unexpected{client.error()};
  if (worker.empty()) {
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    worker = std::string(host) + ":" + std::to_string(getpid()) + ":" + new_uuid().substr(0, 8);
  }
  return std::unique_ptr<MongoStore>(new MongoStore(std::move(*client), lease, std::move(worker)));
}

MongoStore::MongoStore(std::unique_ptr<Client> client, Duration lease, std::string worker)
    : db_(std::move(client)),
      lease_(lease),
      worker_(std::move(worker)),
      process_inserts_(process_inserts()),
      audit_appends_(
          [this](std::vector<const std::vector<AuditEvent>*>& batch) {
            std::vector<AuditEvent> all;
            for (const auto* events : batch)
              all.insert(all.end(), events->begin(), events->end());
            Status written;
            try {
              written = write_audit(all);
            } catch (const std::exception& e) {
              audit_head_known_ = false;  // how much went in is unknown
              written = fail(std::string("mongodb: audit: ") + e.what());
            }
            return std::vector<Status>(batch.size(), written);
          },
          0),
      audit_hash_(kAuditGenesis) {}

MongoStore::~MongoStore() {
  {
    std::lock_guard lock(acceptances_mutex_);
    stopping_ = true;
  }
  acceptances_wake_.notify_one();
  if (acceptances_thread_.joinable()) acceptances_thread_.join();
  record_acceptances();
}

void MongoStore::attach_queue(std::shared_ptr<QueueIndex> queue) {
  queue_ = std::move(queue);
  if (!acceptances_thread_.joinable()) {
    acceptances_thread_ = std::thread([this] { acceptances_loop(); });
  }
}

// An audit block is one insert whatever its size, and on FerretDB's SQLite handler each
// insert holds the one writer that the process inserts need too (some milliseconds under
// load, and a colliding insert sleeps before it tries again): the acceptances of
// kAcceptanceGather go in one block. Their queue entries follow them, so a new process
// reaches a worker up to that much later.
constexpr auto kAcceptanceGather = std::chrono::milliseconds(20);

void MongoStore::acceptances_loop() {
  std::unique_lock lock(acceptances_mutex_);
  for (;;) {
    acceptances_wake_.wait(lock, [&] { return stopping_ || !acceptances_.empty(); });
    if (acceptances_.empty()) return;  // stopping, with nothing left
    acceptances_wake_.wait_for(lock, kAcceptanceGather, [&] { return stopping_; });
    lock.unlock();
    record_acceptances();  // all that waits: the audit's group commit batches them
    lock.lock();
  }
}

// A record that does not go in leaves its processes without an entry too: the sweeper
// finds them (queued, no entry), records their acceptance when the trail lacks it, and
// queues them, within a lease. So nothing is tried again here, which could record an
// acceptance twice.
void MongoStore::record_acceptances() {
  // One call at a time, so that a call returns after what another one took is written too.
  std::lock_guard writing(acceptances_writing_);
  std::vector<AuditEvent> records;
  {
    std::lock_guard lock(acceptances_mutex_);
    records.swap(acceptances_);
  }
  if (records.empty()) return;
  Status audited;
  try {
    audited = append_audit(records);
  } catch (const std::exception& e) {
    audited = fail(std::string("mongodb: audit: ") + e.what());
  }
  if (!audited) {
    spdlog::warn(
        "{} accepted processes have no audit record or queue entry yet ({}); the queue sweeper "
        "records and queues them within a lease",
        records.size(), audited.error());
    return;
  }
  std::vector<std::string> ids;
  ids.reserve(records.size());
  for (const auto& record : records)
    ids.push_back(record.fields.value("processId", ""));
  enqueue(ids);
}

// Concurrent submissions write their processes in one unordered insert: the server refuses
// each reused key on its own and writes the rest, so that one reused key does not hold up
// the others, and N submissions at once cost one journaled write instead of N. The new
// processes then go on the change feed together too (one script a tenant), before any of
// their submitters answers. At most kInsertBatch documents go in one insert; a writer
// lingers up to kInsertLinger for its batch to be as large as the recent ones (see
// GroupCommit): on FerretDB, with 32 connections, batches of about 16 became about 24 (one
// gateway) and 8 became 13 (two gateways on the same cores, whose p99 halved).
constexpr std::size_t kInsertBatch = 128;
constexpr auto kInsertLinger = std::chrono::milliseconds(3);

std::unique_ptr<MongoStore::Inserts> MongoStore::process_inserts() {
  return std::make_unique<Inserts>(
      [this](std::vector<json>& documents) {
        std::vector<Expected<bool>> out;
        try {
          std::vector<std::pair<std::string, std::string>> made;  // tenant, id of each
          json batch = json::array();
          for (auto& document : documents) {
            made.emplace_back(document.value("tenant", ""), document.value("_id", ""));
            batch.push_back(std::move(document));
          }
          auto written = db_->write("insert", "processes",
                                    {{"documents", std::move(batch)}, {"ordered", false}});
          if (!written) {
            out.assign(documents.size(), Unexpected{written.error()});
            return out;
          }
          out.assign(documents.size(), true);
          for (const std::size_t k : written->duplicates) {
            if (k < out.size()) out[k] = false;
          }
          if (written->duplicate_key && written->duplicates.empty()) {
            // A refusal that names no document: only a batch of one can say whose it was.
            if (out.size() == 1) {
              out[0] = false;
            } else {
              out.assign(documents.size(), fail("mongodb: a batched insert was refused"));
            }
          }
          std::map<std::string, std::vector<std::string>> by_tenant;
          for (std::size_t k = 0; k < out.size(); ++k) {
            if (out[k] && *out[k]) by_tenant[made[k].first].push_back(made[k].second);
          }
          for (const auto& [tenant, ids] : by_tenant)
            changed(tenant, ids);
        } catch (const std::exception& e) {
          out.assign(documents.size(), fail(std::string("mongodb: ") + e.what()));
        }
        return out;
      },
      kInsertBatch, kInsertLinger);
}

// Whether the server answers a query on a field other than _id from an index, as MongoDB
// does. (An aggregation: JSON objects here keep their keys in order of name, and the
// command's name must come first.) FerretDB's SQLite handler does not (it reads the collection and
// filters in memory; its explain says so, filterPushdown false); there an index only costs every
// write its upkeep: about a fifth of FerretDB's CPU under a flood of submissions.
bool MongoStore::server_uses_indexes() {
  auto plan = db_->command("explain",
                           {{"aggregate", "processes"},
                            {"cursor", json::object()},
                            {"pipeline", json::array({{{"$match", {{"status", "accepted"}}}}})}},
                           {{"verbosity", "queryPlanner"}});
  if (!plan) {
    spdlog::debug("mongodb: explain: {}; making every index", plan.error());
    return true;
  }
  const auto pushdown = plan->find("filterPushdown");
  return pushdown == plan->end() || !pushdown->is_boolean() || pushdown->get<bool>();
}

Status MongoStore::ready() {
  if (schema_ready_.load()) return {};
  std::lock_guard lock(schema_mutex_);
  if (schema_ready_.load()) return {};
  const auto make = [&](const std::string& collection, const json& index) -> Status {
    auto made = db_->command("createIndexes", collection, {{"indexes", json::array({index})}});
    if (!made) return Unexpected{made.error()};
    return {};
  };
  // The unique index holds the idempotency keys on every server; making it also makes the
  // collection, which the explain below needs (FerretDB explains a missing one as read whole).
  if (auto made = make("processes",
                       {{"key", {{"claim", 1}}}, {"name", "idempotency_key"}, {"unique", true}});
      !made) {
    return made;
  }
  // The others only answer queries.
  const std::vector<std::pair<std::string, json>> for_queries = {
      {"processes", {{"key", {{"status", 1}, {"leaseUntil", 1}}}, {"name", "status_lease"}}},
      {"processes", {{"key", {{"queued", 1}, {"seq", 1}}}, {"name", "queue"}}},
      {"processes", {{"key", {{"tenant", 1}, {"seq", 1}}}, {"name", "tenant_seq"}}},
      {"processes", {{"key", {{"keyAt", 1}}}, {"name", "key_at"}}},
      {"refresh_tokens", {{"key", {{"family", 1}}}, {"name", "family"}}},
      {"token_families", {{"key", {{"clientId", 1}}}, {"name", "client"}}},
      {"audit", {{"key", {{"until", 1}}}, {"name", "until"}}},
      {"claims", {{"key", {{"processId", 1}}}, {"name", "process"}}},
  };
  filters_pushed_down_ = server_uses_indexes();
  if (filters_pushed_down_) {
    for (const auto& [collection, index] : for_queries) {
      if (auto made = make(collection, index); !made) return made;
    }
  } else {
    spdlog::debug(
        "mongodb: the server reads whole collections to answer queries (FerretDB's SQLite "
        "handler): only the unique index is made");
  }
  schema_ready_ = true;
  return {};
}

// A completed process from this store's memory or the answer cache when it is there (it
// never changes again); else from MongoDB, cached when completed. The cache failing only
// costs the read.
Expected<std::optional<ProcessRecord>> MongoStore::load(const std::string& process_id) {
  if (auto kept = completed_.get(process_id)) return kept;
  if (answers_) {
    if (auto cached = answers_->get(process_id); cached && *cached) {
      auto doc = json::parse(**cached, nullptr, false);
      if (doc.is_object() && doc.value("_id", "") == process_id) {
        ProcessRecord record = rows::read_process(doc);
        completed_.put(record);
        return std::optional<ProcessRecord>{std::move(record)};
      }
    }
  }
  std::optional<ProcessRecord> found;
  std::string completed;
  auto scanned = db_->find("processes", {{"_id", process_id}}, {{"limit", 1}}, [&](json& doc) {
    found = rows::read_process(doc);
    if (answers_ && doc.value("status", "") == "completed") completed = doc.dump();
  });
  if (!scanned) return Unexpected{scanned.error()};
  if (found) completed_.put(*found);
  if (!completed.empty()) (void)answers_->put(process_id, completed, kAnswerTtl);
  return found;
}

// The idempotency key is a field of its process's document, `claim`, unique: "tenant\nkey"
// while the key is held, the process id when it has none or has let it go (no id has a
// newline, so it is never a key). Inserting the process is thus also taking its key and
// looking the key up: one journaled write, and never a key without its process. One field
// rather than two: FerretDB's SQLite handler computes each indexed field from the whole
// stored document at every insert.
namespace {
std::string key_claim(const std::string& tenant, const std::string& key) {
  return tenant + "\n" + key;
}
}  // namespace

Expected<bool> MongoStore::insert_process(const std::string& id, std::int64_t seq,
                                          const NewProcess& process) {
  const auto& request = process.request;
  json doc = {{"_id", id},
              {"seq", seq},
              {"tenant", process.tenant},
              {"clientId", process.client_id},
              {"clientProcessId", request.client_process_id},
              {"processType", request.process_type},
              {"data", dump_json(request.data)},
              {"status", "accepted"},
              {"attempt", 1},
              {"queued", true},
              {"createdAt", to_unix_ms(process.now)},
              {"updatedAt", to_unix_ms(process.now)},
              {"correlationId", process.correlation_id},
              {"claim", id}};
  // Fields at their start value (progress 0, no step, result, error or end, not retryable)
  // are left out, and read as such (rows::read_process): FerretDB's work grows with each.
  if (process.estimated_completion) {
    doc["estimatedCompletion"] = to_unix_ms(*process.estimated_completion);
  }
  if (!request.idempotency_key.empty()) {
    doc["claim"] = key_claim(process.tenant, request.idempotency_key);
    doc["requestHash"] = process.request_hash;
    doc["keyAt"] = to_unix_ms(process.now);  // when it was taken, for the cut
  }
  // False when the key is taken: another request with it wrote its process first.
  return process_inserts_->submit(std::move(doc));
}

Expected<Insertion> MongoStore::create_process(const NewProcess& process) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  const auto& key = process.request.idempotency_key;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::int64_t seq = 0;
    auto id = next_process_id(process.now, seq);
    if (!id) return Unexpected{id.error()};
    auto written = insert_process(*id, seq, process);
    if (!written) return Unexpected{written.error()};
    if (!*written) {
      unused_process_id(seq);
      if (key.empty()) continue;  // cannot happen with a fresh id; look again
      std::optional<Insertion> held;
      std::int64_t taken_at = 0;
      const std::string claim = key_claim(process.tenant, key);
      auto scanned = db_->find("processes", {{"claim", claim}}, {{"limit", 1}}, [&](json& doc) {
        taken_at = doc.value("keyAt", std::int64_t{0});
        held = Insertion{false, rows::read_process(doc), doc.value("requestHash", "")};
      });
      if (!scanned) return Unexpected{scanned.error()};
      if (held) {
        auto cut = forget_before();
        if (!cut) return Unexpected{cut.error()};
        if (taken_at >= *cut) return std::move(*held);
        auto let_go = forgotten_key(held->process.view.process_id, claim);
        if (!let_go) return Unexpected{let_go.error()};
      }
      continue;  // let go (here or by another request): take it again
    }
    AuditEvent acceptance = state_event(*id, process.tenant, nullptr, "accepted", process.now);
    if (queue_) {  // recorded, then queued, by the store's thread (see attach_queue)
      bool first = false;
      {
        std::lock_guard lock(acceptances_mutex_);
        first = acceptances_.empty();
        acceptances_.push_back(std::move(acceptance));
      }
      // Only the first of a gathering wakes the thread: the others would wake it in its
      // gathering wait for nothing, a context switch each.
      if (first) acceptances_wake_.notify_one();
    } else if (auto audited = append_audit({std::move(acceptance)}); !audited) {
      return Unexpected{audited.error()};
    }
    Insertion created;
    created.process.tenant = process.tenant;
    created.process.client_id = process.client_id;
    created.process.data = process.request.data;
    created.process.correlation_id = process.correlation_id;
    auto& view = created.process.view;
    view.process_id = *id;
    view.client_process_id = process.request.client_process_id;
    view.process_type = process.request.process_type;
    view.status = ProcessStatus::kAccepted;
    view.created_at = view.updated_at = process.now;
    view.estimated_completion = process.estimated_completion;
    return created;
  }
  return fail("store: idempotency key contended; try again");
}

Expected<std::optional<ProcessRecord>> MongoStore::get_process(const std::string& tenant,
                                                               const std::string& process_id) {
  auto record = load(process_id);
  if (!record) return Unexpected{record.error()};
  if (*record && (*record)->tenant != tenant) return std::optional<ProcessRecord>{};
  return record;
}

Expected<std::vector<ProcessRecord>> MongoStore::list_processes(const ListQuery& query) {
  json filter = {{"tenant", query.tenant}};
  if (query.status) filter["status"] = to_string(*query.status);
  if (!query.process_type.empty()) filter["processType"] = query.process_type;
  if (!query.cursor.empty()) {
    auto after = load(query.cursor);
    if (!after) return Unexpected{after.error()};
    std::int64_t before_seq = 0;  // an unknown cursor (or another tenant's) lists nothing
    if (*after && (*after)->tenant == query.tenant) {
      auto seq = db_->command("find", "processes",
                              {{"filter", {{"_id", query.cursor}}}, {"projection", {{"seq", 1}}}});
      if (!seq) return Unexpected{seq.error()};
      const auto& batch = (*seq)["cursor"]["firstBatch"];
      if (!batch.empty()) before_seq = batch[0].value("seq", std::int64_t{0});
    }
    filter["seq"] = {{"$lt", before_seq}};
  }
  std::vector<ProcessRecord> out;
  auto scanned =
      db_->find("processes", filter,
                {{"sort", {{"seq", -1}}}, {"limit", static_cast<std::int64_t>(query.limit)}},
                [&](json& doc) { out.push_back(rows::read_process(doc)); });
  if (!scanned) return Unexpected{scanned.error()};
  return out;
}

// A retry is the insert of a marker for the attempt it starts, so that two retries at once
// start one attempt.
Expected<ProcessStore::RetryOutcome> MongoStore::retry_process(
    const std::string& tenant, const std::string& process_id, TimePoint now,
    std::optional<TimePoint> estimated_completion) {
  auto record = get_process(tenant, process_id);
  if (!record) return Unexpected{record.error()};
  if (!*record) return RetryOutcome::kNotFound;
  if (!check_transition((*record)->view.status, ProcessStatus::kAccepted,
                        (*record)->view.retryable)) {
    return RetryOutcome::kNotRetryable;
  }
  const int attempt = (*record)->attempt + 1;
  auto marked = db_->write(
      "insert", "claims",
      {{"documents", json::array({{{"_id", process_id + "#attempt" + std::to_string(attempt)},
                                   {"processId", process_id},
                                   {"at", to_unix_ms(now)}}})}});
  if (!marked) return Unexpected{marked.error()};
  if (marked->duplicate_key) return RetryOutcome::kNotRetryable;  // another retry started it
  const json set = {{"status", "accepted"},
                    {"queued", true},
                    {"attempt", attempt},
                    {"progress", 0},
                    {"currentStep", ""},
                    {"result", nullptr},
                    {"error", nullptr},
                    {"retryable", false},
                    {"finishedAt", nullptr},
                    {"updatedAt", to_unix_ms(now)},
                    {"estimatedCompletion", rows::unix_ms_or_null(estimated_completion)}};
  auto retried = db_->write(
      "update", "processes",
      {{"updates", json::array({{{"q", {{"_id", process_id}}}, {"u", {{"$set", set}}}}})}});
  if (!retried) return Unexpected{retried.error()};
  changed(tenant, process_id);
  if (auto audited = audit_state(process_id, tenant, "failed", "accepted", now); !audited) {
    return Unexpected{audited.error()};
  }
  enqueue({process_id});
  return RetryOutcome::kRetried;
}

// Forgetting keys writes nothing to the processes: the cut (keys taken before it are
// forgotten) goes in one document that every store reads, and a key past it is let go when
// it is used again (forgotten_key). A key held longer costs nothing, as it is a field of its
// process, and FerretDB takes milliseconds for each document an update changes. Returns how
// many keys the cut passed this time.
Expected<std::size_t> MongoStore::prune_idempotency_keys(TimePoint before) {
  const std::int64_t cut = to_unix_ms(before);
  auto previous = db_->find_and_modify("settings", {{"query", {{"_id", "idempotency"}}},
                                                    {"update", {{"$max", {{"forgetBefore", cut}}}}},
                                                    {"upsert", true},
                                                    {"new", false}});
  if (!previous) return Unexpected{previous.error()};
  const std::int64_t from =
      previous->is_object() ? previous->value("forgetBefore", std::int64_t{0}) : 0;
  {
    std::lock_guard lock(keys_mutex_);
    forget_before_ = std::max({forget_before_, cut, from});
    forget_read_at_ = std::chrono::steady_clock::now();
  }
  if (from >= cut) return std::size_t{0};
  // A key let go was taken before an earlier cut, so before `from`: not counted again.
  auto counted =
      db_->command("count", "processes", {{"query", {{"keyAt", {{"$gte", from}, {"$lt", cut}}}}}});
  if (!counted) return Unexpected{counted.error()};
  return static_cast<std::size_t>(counted->value("n", std::int64_t{0}));
}

// The cut as the last prune of any store set it, read again at most once a minute: a key is
// then held up to a minute past it, never less long than the cut says.
Expected<std::int64_t> MongoStore::forget_before() {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(keys_mutex_);
    if (now - forget_read_at_ < std::chrono::minutes(1)) return forget_before_;
  }
  std::int64_t cut = 0;
  auto scanned = db_->find("settings", {{"_id", "idempotency"}}, {{"limit", 1}},
                           [&](json& doc) { cut = doc.value("forgetBefore", std::int64_t{0}); });
  if (!scanned) return Unexpected{scanned.error()};
  std::lock_guard lock(keys_mutex_);
  forget_before_ = std::max(forget_before_, cut);
  forget_read_at_ = now;
  return forget_before_;
}

// Lets go of the key (`claim`) a process holds, taken before the cut: the claim becomes its
// own id, unique as every id is. False when another request let it go first.
Expected<bool> MongoStore::forgotten_key(const std::string& process_id, const std::string& claim) {
  auto written =
      db_->write("update", "processes",
                 {{"updates", json::array({{{"q", {{"_id", process_id}, {"claim", claim}}},
                                            {"u", {{"$set", {{"claim", process_id}}}}}}})}});
  if (!written) return Unexpected{written.error()};
  return written->modified > 0;
}

// A count for each state and one of the queued, each served by an index on MongoDB
// (status_lease, queue) rather than a $group that reads every process ever kept. Finished
// processes only grow in number and counting them costs as many index entries: they are
// counted again at most every kFinishedCountsFor, and the last counts stand in between (and
// when counting them fails).
Expected<ProcessCounts> MongoStore::process_counts() {
  ProcessCounts counts;
  const auto count = [&](const json& query) -> Expected<std::int64_t> {
    auto counted = db_->command("count", "processes", {{"query", query}});
    if (!counted) return Unexpected{counted.error()};
    return counted->value("n", std::int64_t{0});
  };
  for (const char* status : {"accepted", "processing"}) {
    auto n = count({{"status", status}});
    if (!n) return Unexpected{n.error()};
    if (*n > 0) counts.by_status[status] = *n;
  }
  auto queued = count({{"queued", true}});
  if (!queued) return Unexpected{queued.error()};
  counts.queued = *queued;
  std::lock_guard lock(finished_mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (!finished_counted_at_ || now - *finished_counted_at_ >= kFinishedCountsFor) {
    std::map<std::string, std::int64_t> finished;
    bool counted = true;
    for (const char* status : {"completed", "failed"}) {
      auto n = count({{"status", status}});
      if (!n) {
        spdlog::warn("metrics: {} processes not counted: {}", status, n.error());
        counted = false;
        break;
      }
      if (*n > 0) finished[status] = *n;
    }
    if (counted) finished_ = std::move(finished);
    finished_counted_at_ = now;
  }
  counts.by_status.insert(finished_.begin(), finished_.end());
  return counts;
}

Status MongoStore::check_writable() {
  auto hello = db_->command("hello", 1);
  if (!hello) return Unexpected{hello.error()};
  if (!hello->value("isWritablePrimary", false)) {
    return fail("mongodb: the server is not a writable primary");
  }
  return ready();
}

}  // namespace stargate::server
