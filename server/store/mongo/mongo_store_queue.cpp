// MongoStore: the work queue (claims under leases, with or without a queue index),
// progress and outcomes.
#include "server/store/mongo/mongo_store.hpp"

#include <algorithm>
#include <map>

#include <spdlog/spdlog.h>

#include "server/store/mongo/mongo_rows.hpp"
#include "shared/json.hpp"

namespace stargate::server {

using nlohmann::json;
using namespace mongo;

namespace {

// Which processes a worker may claim: queued ones, and those whose worker let its lease run
// out (stopped, crashed, or cut off), which it takes over.
json claimable_filter(std::int64_t now_ms) {
  return {{"$or", json::array({{{"queued", true}},
                               {{"status", "processing"}, {"leaseUntil", {{"$lt", now_ms}}}}})}};
}

bool claimable(const json& doc, std::int64_t now_ms) {
  if (doc.value("queued", false)) return true;
  const auto& until = doc.contains("leaseUntil") ? doc["leaseUntil"] : json();
  return doc.value("status", "") == "processing" && until.is_number() &&
         until.get<std::int64_t>() < now_ms;
}

constexpr auto kQueueWait = std::chrono::milliseconds(500);

}  // namespace

// A claim is a lease. Taking it is the insert of a marker for the process's next claim
// number, which one worker wins: FerretDB can hand one document to two callers of
// findAndModify or of a conditional update, but never lets two inserts of one _id succeed.
Expected<std::optional<ProcessRecord>> MongoStore::claim_document(const json& doc, TimePoint now) {
  const auto ms = to_unix_ms(now);
  const std::int64_t claims = doc.value("claims", std::int64_t{0});
  const std::string id = doc.value("_id", "");
  auto marked =
      db_->write("insert", "claims",
                 {{"documents", json::array({{{"_id", id + "#" + std::to_string(claims + 1)},
                                              {"processId", id},
                                              {"worker", worker_},
                                              {"at", ms}}})}});
  if (!marked) return Unexpected{marked.error()};
  if (marked->duplicate_key) return std::optional<ProcessRecord>{};  // another worker was quicker
  auto taken = db_->write("update", "processes",
                          {{"updates", json::array({{{"q", {{"_id", id}}},
                                                     {"u",
                                                      {{"$set",
                                                        {{"queued", false},
                                                         {"status", "processing"},
                                                         {"leaseOwner", worker_},
                                                         {"leaseUntil", to_unix_ms(now + lease_)},
                                                         {"updatedAt", ms},
                                                         {"claims", claims + 1}}}}}}})}});
  if (!taken) return Unexpected{taken.error()};
  ProcessRecord record = rows::read_process(doc);
  const bool taken_over = record.view.status == ProcessStatus::kProcessing;
  record.view.status = ProcessStatus::kProcessing;
  record.view.updated_at = from_unix_ms(ms);
  hold(record);
  if (!taken_over) {
    changed(record.tenant, id);
    if (auto audited =
            audit_state(record.view.process_id, record.tenant, "accepted", "processing", now);
        !audited) {
      return Unexpected{audited.error()};
    }
  }
  return std::optional<ProcessRecord>{std::move(record)};
}

// Without a queue index: the first claimable processes in line, from MongoDB itself.
Expected<std::optional<ProcessRecord>> MongoStore::claim_next(TimePoint now) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  if (changes_) changes_->repair();
  if (queue_) return claim_from_queue(now);
  for (int round = 0; round < 5; ++round) {
    std::vector<json> candidates;
    auto scanned = db_->find("processes", claimable_filter(to_unix_ms(now)),
                             {{"sort", {{"seq", 1}}}, {"limit", 4}},
                             [&](json& doc) { candidates.push_back(std::move(doc)); });
    if (!scanned) return Unexpected{scanned.error()};
    if (candidates.empty()) return std::optional<ProcessRecord>{};
    for (auto& doc : candidates) {
      auto claimed = claim_document(doc, now);
      if (!claimed || *claimed) return claimed;
    }
  }
  return std::optional<ProcessRecord>{};  // contended: the caller looks again soon
}

// With a queue index: the process each entry names, if it is still claimable (an entry can
// be older than the process's last change: a duplicate, or one of a process another worker
// took over or finished), else the entry is spent. A worker that cannot reach the index
// claims nothing until it can.
Expected<std::optional<ProcessRecord>> MongoStore::claim_from_queue(TimePoint now) {
  sweep_if_due(now);
  for (int round = 0; round < 8; ++round) {
    auto entry = queue_->next(round == 0 ? Duration(kQueueWait) : Duration::zero());
    if (!entry) return Unexpected{entry.error()};
    if (!*entry) return std::optional<ProcessRecord>{};
    std::optional<json> doc;
    auto scanned = db_->find("processes", {{"_id", (*entry)->process_id}}, {{"limit", 1}},
                             [&](json& found) { doc = std::move(found); });
    if (!scanned) return Unexpected{scanned.error()};  // the entry stays pending: taken over later
    // Judged by the time the entry came: `now` was read before the sweep and the wait, and
    // a dead worker's entry comes once its lease has run out, by a clock read since.
    const TimePoint at = std::max(now, now_utc());
    if (doc && claimable(*doc, to_unix_ms(at))) {
      auto claimed = claim_document(*doc, at);
      if (!claimed) return claimed;
      if (*claimed) {
        std::lock_guard lock(entries_mutex_);
        entries_[(*entry)->process_id] = **entry;
        return claimed;
      }
    }
    if (auto spent = queue_->done(**entry); !spent) {
      spdlog::warn("queue: entry {} not removed: {}", (*entry)->id, spent.error());
    }
  }
  return std::optional<ProcessRecord>{};
}

void MongoStore::enqueue(const std::vector<std::string>& process_ids) {
  if (!queue_ || process_ids.empty()) return;
  if (auto pushed = queue_->push(process_ids); !pushed) {
    spdlog::warn(
        "process {}{}: not put on the work queue ({}); the sweeper queues {} within a lease",
        process_ids.front(),
        process_ids.size() > 1 ? fmt::format(" and {} more", process_ids.size() - 1) : "",
        pushed.error(), process_ids.size() > 1 ? "them" : "it");
  }
}

void MongoStore::finished_entry(const std::string& process_id) {
  if (!queue_) return;
  std::optional<QueueIndex::Entry> entry;
  {
    std::lock_guard lock(entries_mutex_);
    auto found = entries_.find(process_id);
    if (found == entries_.end()) return;
    entry = found->second;
    entries_.erase(found);
  }
  if (auto spent = queue_->done(*entry); !spent) {
    // Left pending: another worker takes it over after the lease and finds it finished.
    spdlog::warn("process {}: queue entry not removed: {}", process_id, spent.error());
  }
}

// Puts back entries for the claimable processes no entry covers (Redis lost them, or a
// push failed, or the gateway stopped before its push): one worker every lease. A process
// accepted less than kSettle ago (by the gateway's clock) is left for the next sweep: its
// gateway is likely still writing its audit record and entry, which the sweep would
// otherwise take as missing.
constexpr auto kSettle = std::chrono::seconds(10);

void MongoStore::sweep_if_due(TimePoint now) {
  std::unique_lock lock(sweep_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || now - last_sweep_ < lease_) return;
  last_sweep_ = now;
  record_acceptances();  // so that this store's own are never taken for a stopped gateway's
  auto due = queue_->sweep_due(lease_);
  if (!due || !*due) return;
  std::vector<std::string> ids;
  std::map<std::string, json> accepted;
  const auto settled = to_unix_ms(now - kSettle);
  const auto each = [&](json& doc) {
    const std::string id = doc.value("_id", "");
    if (doc.value("status", "") == "accepted") {
      if (doc.value("updatedAt", std::int64_t{0}) > settled) return;
      accepted[id] = std::move(doc);
    }
    ids.push_back(id);
  };
  const json projection = {
      {"projection", {{"_id", 1}, {"status", 1}, {"tenant", 1}, {"attempt", 1}, {"updatedAt", 1}}}};
  // Two queries rather than claimable_filter's $or, so that MongoDB serves each from an
  // index (queue; status_lease) instead of reading every process ever kept.
  auto scanned = db_->find("processes", {{"queued", true}}, projection, each);
  if (scanned) {
    scanned = db_->find("processes",
                        {{"status", "processing"}, {"leaseUntil", {{"$lt", to_unix_ms(now)}}}},
                        projection, each);
  }
  if (!scanned) {
    spdlog::warn("queue sweeper: {}", scanned.error());
    return;
  }
  auto pushed = queue_->sweep_uncovered(ids);
  if (!pushed) {
    spdlog::warn("queue sweeper: {}", pushed.error());
  } else if (!pushed->empty()) {
    spdlog::info("queue sweeper: {} queued processes had no queue entry; queued again",
                 pushed->size());
    for (const std::string& id : *pushed) {
      const auto found = accepted.find(id);
      if (found == accepted.end()) continue;
      if (auto audited = audit_acceptance_if_missing(found->second); !audited) {
        spdlog::warn("queue sweeper: process {}: {}", id, audited.error());
      }
    }
  }
  // Each worker that ever ran is a consumer of the group until forgotten: the names of
  // those gone for an hour (holding nothing) go, so that restarts leave nothing behind.
  if (auto forgotten = queue_->forget_idle_workers(std::chrono::hours(1)); !forgotten) {
    spdlog::warn("queue sweeper: {}", forgotten.error());
  } else if (*forgotten > 0) {
    spdlog::info("queue sweeper: forgot {} workers gone for an hour", *forgotten);
  }
}

// A write to a process this worker holds names the lease in its filter, so that MongoDB
// applies it only while the lease is this worker's. FerretDB's SQLite handler decodes every
// process ever kept to apply any filter but a lone _id, which it passes to SQLite: there
// the process is read by _id and checked here, then written by _id, which on that server
// is no less atomic than its own filter (it applies an update by reading the document and
// writing it back). Measured: 600 orders run by two workers in 90 s instead of 190 s.
Expected<std::optional<json>> MongoStore::held_filter(const std::string& process_id) {
  if (filters_pushed_down_.load()) {
    return std::optional<json>{
        json{{"_id", process_id}, {"status", "processing"}, {"leaseOwner", worker_}}};
  }
  auto mine = holds(process_id);
  if (!mine) return Unexpected{mine.error()};
  if (!*mine) return std::optional<json>{};
  return std::optional<json>{json{{"_id", process_id}}};
}

Status MongoStore::renew_lease(const std::string& process_id, TimePoint now) {
  std::unique_lock turn(held_writes_mutex_);
  auto filter = held_filter(process_id);
  if (!filter) return Unexpected{filter.error()};
  if (*filter) {
    auto renewed = db_->write(
        "update", "processes",
        {{"updates",
          json::array({{{"q", **filter},
                        {"u", {{"$set", {{"leaseUntil", to_unix_ms(now + lease_)}}}}}}})}});
    if (!renewed) return Unexpected{renewed.error()};
  }
  turn.unlock();
  if (queue_) {
    std::optional<QueueIndex::Entry> entry;
    {
      std::lock_guard lock(entries_mutex_);
      if (auto found = entries_.find(process_id); found != entries_.end()) entry = found->second;
    }
    if (entry) {
      if (auto touched = queue_->touch(*entry); !touched) return touched;
    }
  }
  return {};
}

Expected<bool> MongoStore::holds(const std::string& process_id) {
  bool mine = false;
  auto scanned = db_->find("processes", {{"_id", process_id}}, {{"limit", 1}}, [&](json& doc) {
    mine = doc.value("status", "") == "processing" && doc.value("leaseOwner", "") == worker_;
  });
  if (!scanned) return Unexpected{scanned.error()};
  return mine;
}

Status MongoStore::update_progress(const std::string& process_id, int progress,
                                   const std::string& step, TimePoint now) {
  // Progress renews the lease too.
  const json set = {{"progress", progress},
                    {"currentStep", step},
                    {"leaseUntil", to_unix_ms(now + lease_)},
                    {"updatedAt", to_unix_ms(now)}};
  std::unique_lock turn(held_writes_mutex_);
  auto filter = held_filter(process_id);
  if (!filter) return Unexpected{filter.error()};
  if (!*filter) return {};  // not under this worker's lease: no change
  auto updated =
      db_->write("update", "processes",
                 {{"updates", json::array({{{"q", **filter}, {"u", {{"$set", set}}}}})}});
  turn.unlock();
  if (!updated) return Unexpected{updated.error()};
  if (updated->n == 0 || !changes_) return {};  // not under this worker's lease: no change
  std::string tenant;
  {
    std::lock_guard lock(held_mutex_);
    auto& held = held_[process_id];
    if (!held.tenant.empty() && held.progress == progress && held.step == step) return {};
    held.progress = progress;
    held.step = step;
    tenant = held.tenant;
  }
  if (tenant.empty()) {  // held without a claim through this store: ask MongoDB
    auto scanned = db_->find("processes", {{"_id", process_id}},
                             {{"limit", 1}, {"projection", {{"tenant", 1}}}},
                             [&](json& doc) { tenant = doc.value("tenant", ""); });
    if (!scanned) return {};  // the progress is written; the feed shows it with the next change
    std::lock_guard lock(held_mutex_);
    held_[process_id].tenant = tenant;
  }
  changed(tenant, process_id);
  return {};
}

namespace {

// The change of a processing process (`filter`: held_filter's) into a final state, and its
// tenant for the audit.
Expected<std::string> finish(Client& db, const std::string& process_id,
                             const Expected<std::optional<json>>& filter, json set) {
  if (!filter) return Unexpected{filter.error()};
  const auto not_held = [&] {
    return fail("store: process " + process_id + " is not processing under this worker's lease");
  };
  if (!*filter) return not_held();
  set["leaseOwner"] = nullptr;
  set["leaseUntil"] = nullptr;
  auto finished = db.find_and_modify(
      "processes", {{"query", **filter}, {"update", {{"$set", std::move(set)}}}, {"new", true}});
  if (!finished) return Unexpected{finished.error()};
  if (finished->is_null()) return not_held();
  return finished->value("tenant", "");
}

}  // namespace

Status MongoStore::complete(const std::string& process_id, const nlohmann::json& result,
                            TimePoint now) {
  std::unique_lock turn(held_writes_mutex_);
  auto tenant = finish(*db_, process_id, held_filter(process_id),
                       {{"status", "completed"},
                        {"progress", 100},
                        {"result", dump_json(result)},
                        {"updatedAt", to_unix_ms(now)},
                        {"finishedAt", to_unix_ms(now)}});
  turn.unlock();
  if (!tenant) return Unexpected{tenant.error()};
  changed(*tenant, process_id);
  release(process_id);
  finished_entry(process_id);
  return audit_state(process_id, *tenant, "processing", "completed", now);
}

Status MongoStore::fail_process(const std::string& process_id, const ProcessError& error,
                                bool retryable, TimePoint now) {
  std::unique_lock turn(held_writes_mutex_);
  auto tenant = finish(*db_, process_id, held_filter(process_id),
                       {{"status", "failed"},
                        {"error", dump_json(to_json(error))},
                        {"retryable", retryable},
                        {"updatedAt", to_unix_ms(now)},
                        {"finishedAt", to_unix_ms(now)}});
  turn.unlock();
  if (!tenant) return Unexpected{tenant.error()};
  changed(*tenant, process_id);
  release(process_id);
  finished_entry(process_id);
  return audit_state(process_id, *tenant, "processing", "failed", now);
}

// Processes whose worker let its lease run out go back on the queue; those of live workers
// (which renew theirs) stay where they are. claim_next() takes expired ones over anyway;
// this makes them count as queued meanwhile, and with a queue index gives them entries of
// their own at once rather than after their old entries' lease.
Expected<std::size_t> MongoStore::requeue_interrupted(TimePoint now) {
  const json expired = {
      {"status", "processing"}, {"queued", false}, {"leaseUntil", {{"$lt", to_unix_ms(now)}}}};
  std::vector<std::string> ids;
  if (queue_) {
    auto scanned = db_->find("processes", expired, {{"projection", {{"_id", 1}}}},
                             [&](json& doc) { ids.push_back(doc.value("_id", "")); });
    if (!scanned) return Unexpected{scanned.error()};
  }
  auto requeued = db_->write(
      "update", "processes",
      {{"updates",
        json::array({{{"q", expired},
                      {"u", {{"$set", {{"queued", true}, {"updatedAt", to_unix_ms(now)}}}}},
                      {"multi", true}}})}});
  if (!requeued) return Unexpected{requeued.error()};
  for (const auto& id : ids) {
    if (auto pushed = queue_->push_again(id); !pushed) {
      spdlog::warn(
          "process {}: not put on the work queue ({}); its old entry is taken over "
          "after the lease",
          id, pushed.error());
    }
  }
  return static_cast<std::size_t>(requeued->modified);
}

Expected<std::optional<TimePoint>> MongoStore::oldest_queued() {
  std::optional<TimePoint> oldest;
  auto scanned =
      db_->find("processes", {{"queued", true}},
                {{"sort", {{"seq", 1}}}, {"limit", 1}, {"projection", {{"updatedAt", 1}}}},
                [&](json& doc) { oldest = from_unix_ms(doc.value("updatedAt", std::int64_t{0})); });
  if (!scanned) return Unexpected{scanned.error()};
  return oldest;
}

}  // namespace stargate::server
