// MongoStore: clients and refresh-token families, and the audit trail.
#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "server/store/audit_chain.hpp"
#include "server/store/mongo/mongo_rows.hpp"
#include "server/store/mongo/mongo_store.hpp"

namespace stargate::server {

using nlohmann::json;
using namespace mongo;

Status MongoStore::add_client(const ClientRecord& client) {
  if (auto ok = ready(); !ok) return ok;
  auto written = db_->write(
      "insert", "clients",
      {{"documents", json::array({{{"_id", client.client_id},
                                   {"tenant", client.tenant},
                                   {"secretHash", client.secret_hash},
                                   {"processTypes", client.process_types},
                                   {"createdAt", to_unix_ms(client.created_at)},
                                   {"revoked", client.revoked},
                                   {"previousSecretHash", client.previous_secret_hash},
                                   {"previousSecretUntil",
                                    rows::unix_ms_or_null(client.previous_secret_until)}}})}});
  if (!written) return Unexpected{written.error()};
  if (written->duplicate_key) return fail("store: client " + client.client_id + " exists");
  if (client.revoked) {
    if (auto recorded = record_revocation("client:" + client.client_id, now_utc()); !recorded) {
      return recorded;
    }
  }
  if (revocations_) {
    if (auto added = revocations_->add_client(client.client_id); !added) {
      spdlog::warn("client {} not copied to the revocation index ({}); it is rebuilt within {} s",
                   client.client_id, added.error(), kReconcileEvery.count());
    }
  }
  return {};
}

Expected<std::optional<ClientRecord>> MongoStore::find_client(const std::string& client_id) {
  std::optional<ClientRecord> found;
  auto scanned = db_->find("clients", {{"_id", client_id}}, {{"limit", 1}},
                           [&](json& doc) { found = rows::read_client(doc); });
  if (!scanned) return Unexpected{scanned.error()};
  return found;
}

Expected<std::vector<ClientRecord>> MongoStore::list_clients() {
  std::vector<ClientRecord> out;
  auto scanned = db_->find("clients", json::object(), {{"sort", {{"createdAt", 1}}}},
                           [&](json& doc) { out.push_back(rows::read_client(doc)); });
  if (!scanned) return Unexpected{scanned.error()};
  // Equal creation times in id order, as the SQLite store lists them.
  std::stable_sort(out.begin(), out.end(), [](const ClientRecord& a, const ClientRecord& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.client_id < b.client_id;
  });
  return out;
}

// The revocation is recorded first (its own document, and the revocation index), then the
// client and its families are marked: a crash in between leaves the client refused by the
// index while it may still look usable in its own document, never the other way round.
Status MongoStore::revoke_client(const std::string& client_id, TimePoint now) {
  auto client = find_client(client_id);
  if (!client) return Unexpected{client.error()};
  if (!*client) return fail("no such client: " + client_id);
  if (auto recorded = record_revocation("client:" + client_id, now); !recorded) return recorded;
  auto revoked = db_->write(
      "update", "clients",
      {{"updates",
        json::array({{{"q", {{"_id", client_id}}}, {"u", {{"$set", {{"revoked", true}}}}}}})}});
  if (!revoked) return Unexpected{revoked.error()};
  auto families = db_->write("update", "token_families",
                             {{"updates", json::array({{{"q", {{"clientId", client_id}}},
                                                        {"u", {{"$set", {{"revoked", true}}}}},
                                                        {"multi", true}}})}});
  if (!families) return Unexpected{families.error()};
  return {};
}

// Conditional on the secret read first, so that two rotations at once cannot both move
// "their" current secret to previous: the second finds the secret changed and fails.
Status MongoStore::rotate_client_secret(const std::string& client_id,
                                        const std::string& secret_hash,
                                        std::optional<TimePoint> previous_until) {
  if (auto ok = ready(); !ok) return ok;
  auto client = find_client(client_id);
  if (!client) return Unexpected{client.error()};
  if (!*client || (*client)->revoked) return fail("no such client, or revoked: " + client_id);
  auto rotated = db_->write(
      "update", "clients",
      {{"updates",
        json::array(
            {{{"q",
               {{"_id", client_id}, {"secretHash", (*client)->secret_hash}, {"revoked", false}}},
              {"u",
               {{"$set",
                 {{"secretHash", secret_hash},
                  {"previousSecretHash", (*client)->secret_hash},
                  {"previousSecretUntil", rows::unix_ms_or_null(previous_until)}}}}}}})}});
  if (!rotated) return Unexpected{rotated.error()};
  if (rotated->n != 1) return fail("client " + client_id + " changed meanwhile; try again");
  return {};
}

Status MongoStore::record_revocation(const std::string& member, TimePoint now) {
  auto written =
      db_->write("insert", "revocations",
                 {{"documents", json::array({{{"_id", member}, {"at", to_unix_ms(now)}}})}});
  if (!written) return Unexpected{written.error()};
  if (revocations_) {
    if (auto added = revocations_->add_revocation(member); !added) {
      // The index is behind the record: every store compares the two soon
      // (reconcile_revocations) and builds it again.
      spdlog::warn("revocation of {} not copied to the index ({}); it is rebuilt within {} s",
                   member, added.error(), kReconcileEvery.count());
    }
  }
  std::lock_guard lock(usable_mutex_);
  usable_until_.clear();
  return {};
}

Status MongoStore::revoke_family(const std::string& family) {
  if (auto recorded = record_revocation("family:" + family, now_utc()); !recorded) return recorded;
  auto revoked = db_->write(
      "update", "token_families",
      {{"updates",
        json::array({{{"q", {{"_id", family}}}, {"u", {{"$set", {{"revoked", true}}}}}}})}});
  if (!revoked) return Unexpected{revoked.error()};
  return {};
}

// Builds the index from the record's clients and revocations.
Status MongoStore::rebuild_revocations() {
  std::vector<std::string> clients;
  std::vector<std::string> members;
  auto scanned = db_->find("clients", json::object(), {{"projection", {{"_id", 1}}}},
                           [&](json& doc) { clients.push_back(doc.value("_id", "")); });
  if (!scanned) return scanned;
  scanned = db_->find("revocations", json::object(), {{"projection", {{"_id", 1}}}},
                      [&](json& doc) { members.push_back(doc.value("_id", "")); });
  if (!scanned) return scanned;
  if (auto built = revocations_->rebuild(clients, members); !built) return built;
  spdlog::info("revocation index built: {} clients, {} revocations", clients.size(),
               members.size());
  return {};
}

// Every kReconcileEvery, one check that the index holds as many clients and revocations as
// the record (all only grow), so that what a lost Redis write left out is caught.
void MongoStore::reconcile_revocations() {
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock lock(reconcile_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || now - last_reconcile_ < kReconcileEvery) return;
  last_reconcile_ = now;
  // Runs on a request's thread: while MongoDB is down, the first count's failure ends it
  // (one server-selection timeout for that request, every kReconcileEvery).
  auto clients = db_->command("count", "clients");
  if (!clients) return;
  auto revocations = db_->command("count", "revocations");
  if (!revocations) return;
  auto in_index = revocations_->sizes();
  if (!in_index) return;
  if (static_cast<std::int64_t>(in_index->clients) == clients->value("n", std::int64_t{0}) &&
      static_cast<std::int64_t>(in_index->revocations) ==
          revocations->value("n", std::int64_t{0})) {
    return;
  }
  if (auto rebuilt = rebuild_revocations(); !rebuilt) {
    spdlog::warn("revocation index: {}", rebuilt.error());
  }
}

Status MongoStore::add_refresh_token(const RefreshToken& token) {
  if (auto ok = ready(); !ok) return ok;
  auto family = db_->write("insert", "token_families",
                           {{"documents", json::array({{{"_id", token.family},
                                                        {"clientId", token.client_id},
                                                        {"createdAt", to_unix_ms(now_utc())},
                                                        {"revoked", false}}})}});
  if (!family) return Unexpected{family.error()};
  auto written =
      db_->write("insert", "refresh_tokens",
                 {{"documents", json::array({{{"_id", token.hash},
                                              {"family", token.family},
                                              {"scopes", token.scopes},
                                              {"expiresAt", to_unix_ms(token.expires_at)},
                                              {"usedAt", nullptr}}})}});
  if (!written) return Unexpected{written.error()};
  return {};
}

// The successor is stored before the token is used up, so that a crash between the two
// leaves an unknown successor (harmless) rather than a used token with none.
Expected<RefreshResult> MongoStore::rotate_refresh_token(const std::string& hash,
                                                         const std::string& next_hash,
                                                         TimePoint next_expiry, TimePoint now) {
  RefreshResult result;
  std::optional<json> token;
  auto scanned = db_->find("refresh_tokens", {{"_id", hash}}, {{"limit", 1}},
                           [&](json& doc) { token = std::move(doc); });
  if (!scanned) return Unexpected{scanned.error()};
  if (!token) return result;  // unknown
  const std::string family = token->value("family", "");
  std::optional<json> family_doc;
  scanned = db_->find("token_families", {{"_id", family}}, {{"limit", 1}},
                      [&](json& doc) { family_doc = std::move(doc); });
  if (!scanned) return Unexpected{scanned.error()};
  if (!family_doc) return result;
  bool used = !(*token)["usedAt"].is_null();
  if (!used) {  // its marker may be in place with the crash before usedAt
    scanned =
        db_->find("refresh_spent", {{"_id", hash}}, {{"limit", 1}}, [&](json&) { used = true; });
    if (!scanned) return Unexpected{scanned.error()};
  }
  const bool family_revoked = family_doc->value("revoked", false);
  if (used && !family_revoked) {
    // A used token presented again: it was stolen, or its successor was. Revoke them all.
    if (auto revoked = revoke_family(family); !revoked) return Unexpected{revoked.error()};
    result.kind = RefreshResult::Kind::kReused;
    return result;
  }
  const bool expired = token->value("expiresAt", std::int64_t{0}) <= to_unix_ms(now);
  if (used || expired || family_revoked) return result;
  const std::string client_id = family_doc->value("clientId", "");
  auto client = find_client(client_id);
  if (!client) return Unexpected{client.error()};
  if (!*client || (*client)->revoked) return result;
  const std::string scopes = token->value("scopes", "");
  auto stored = db_->write("insert", "refresh_tokens",
                           {{"documents", json::array({{{"_id", next_hash},
                                                        {"family", family},
                                                        {"scopes", scopes},
                                                        {"expiresAt", to_unix_ms(next_expiry)},
                                                        {"usedAt", nullptr}}})}});
  if (!stored) return Unexpected{stored.error()};
  // Used up by the insert of its marker: of two requests with this token, one inserts it
  // and rotates, the other is a reuse.
  auto spent = db_->write("insert", "refresh_spent",
                          {{"documents", json::array({{{"_id", hash}, {"at", to_unix_ms(now)}}})}});
  if (!spent) return Unexpected{spent.error()};
  if (spent->duplicate_key) {
    if (auto revoked = revoke_family(family); !revoked) return Unexpected{revoked.error()};
    result.kind = RefreshResult::Kind::kReused;
    return result;
  }
  auto marked =
      db_->write("update", "refresh_tokens",
                 {{"updates", json::array({{{"q", {{"_id", hash}}},
                                            {"u", {{"$set", {{"usedAt", to_unix_ms(now)}}}}}}})}});
  if (!marked) return Unexpected{marked.error()};
  result.client = std::move(**client);
  result.next = {next_hash, client_id, family, scopes, next_expiry};
  result.kind = RefreshResult::Kind::kRotated;
  return result;
}

// Tokens in use at once that a gateway remembers as usable (see kUsableFor); past that it
// forgets them all and asks the index again.
constexpr std::size_t kUsableMemos = 10'000;

Expected<bool> MongoStore::token_usable(const std::string& client_id, const std::string& family) {
  if (revocations_) {
    const std::string memo = client_id + "\n" + family;
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(usable_mutex_);
      if (auto found = usable_until_.find(memo); found != usable_until_.end()) {
        if (now < found->second) return true;
        usable_until_.erase(found);
      }
    }
    reconcile_revocations();
    auto usable = revocations_->usable(client_id, family);
    if (usable && usable->has_value()) {
      if (**usable) {
        std::lock_guard lock(usable_mutex_);
        if (usable_until_.size() >= kUsableMemos) usable_until_.clear();
        usable_until_.emplace(memo, now + kUsableFor);
      }
      return **usable;
    }
    if (usable) {  // never built, or Redis lost it: build it, and ask the record this time
      if (auto rebuilt = rebuild_revocations(); !rebuilt) {
        spdlog::warn("revocation index: {}", rebuilt.error());
      }
    }
    // Redis down: the record answers.
  }
  auto client = find_client(client_id);
  if (!client) return Unexpected{client.error()};
  if (!*client || (*client)->revoked) return false;
  bool family_revoked = false;
  auto scanned = db_->find("token_families", {{"_id", family}}, {{"limit", 1}},
                           [&](json& doc) { family_revoked = doc.value("revoked", false); });
  if (!scanned) return Unexpected{scanned.error()};
  return !family_revoked;
}

// One chain per writer (this store; its name is worker_, unique to this run of the
// program), so that gateways and workers never contend for the head of a chain: each
// appends to its own, and audit verify checks all of them. Records go in blocks, one
// document each insert (rows::audit_block), numbered in order within the chain.
// Group commit: the events of every caller that arrives while a batch is being written go
// in the next batch, written by the first of them, so that concurrent requests cost one
// insert.
Status MongoStore::append_audit(const std::vector<AuditEvent>& events) {
  if (events.empty()) return {};
  return audit_appends_.submit(&events);
}

// After a failed insert, whether it went in is unknown: the head of this store's chain is
// moved forward to its newest block by a gallop over the block numbers past the last one
// known (first_missing). Blocks are contiguous: each is inserted after the one before it
// went in.
Status MongoStore::follow_audit_head() {
  const auto lookup = [&](std::int64_t block, json* doc) -> Expected<bool> {
    bool found = false;
    auto scanned = db_->find("audit", {{"_id", rows::audit_id(worker_, block)}}, {{"limit", 1}},
                             [&](json& got) {
                               found = true;
                               if (doc != nullptr) *doc = std::move(got);
                             });
    if (!scanned) return Unexpected{scanned.error()};
    return found;
  };
  auto missing =
      first_missing(audit_block_ + 1, [&](std::int64_t block) { return lookup(block, nullptr); });
  if (!missing) return Unexpected{missing.error()};
  const std::int64_t found = *missing - 1;
  audit_head_known_ = true;
  if (found == audit_block_) return {};
  json doc;
  auto there = lookup(found, &doc);
  if (!there) return Unexpected{there.error()};
  const auto records = rows::read_audit_block(doc);
  if (!*there || records.empty()) {
    return fail("store: audit block " + std::to_string(found) + " vanished");
  }
  audit_block_ = found;
  audit_seq_ = records.back().seq;
  audit_hash_ = records.back().hash;
  return {};
}

// A batch goes in blocks of up to kAuditBlockRecords records and about kAuditBlockBytes,
// chained from this store's head.
// Only one call at a time runs this (append_audit's batch writer).
Status MongoStore::write_audit(const std::vector<AuditEvent>& events) {
  if (auto ok = ready(); !ok) return ok;
  if (!audit_head_known_) {
    if (auto followed = follow_audit_head(); !followed) return followed;
  }
  for (std::size_t next = 0; next < events.size();) {
    std::vector<AuditRecord> records;
    std::int64_t seq = audit_seq_;
    std::string prev = audit_hash_;
    std::size_t bytes = 0;
    for (std::size_t k = next;
         k < events.size() && records.size() < kAuditBlockRecords && bytes < kAuditBlockBytes;
         ++k) {
      records.push_back(chain_audit_record(seq, prev, events[k], worker_));
      seq = records.back().seq;
      prev = records.back().hash;
      bytes += records.back().record.size();
    }
    const std::int64_t block = audit_block_ + 1;
    auto written =
        db_->write("insert", "audit",
                   {{"documents", json::array({rows::audit_block(worker_, block, records)})}});
    if (!written) {
      audit_head_known_ = false;  // whether it went in is unknown: find the head next time
      return Unexpected{written.error()};
    }
    if (written->duplicate_key) {
      audit_head_known_ = false;
      return fail("store: audit chain " + worker_ + " is written by another program too");
    }
    audit_block_ = block;
    audit_seq_ = records.back().seq;
    audit_hash_ = records.back().hash;
    next += records.size();
  }
  return {};
}

constexpr int kAuditScanBatch = 16;  // blocks in one reply: about 16 MB at most

// Sorted by _id: chain by chain, each in order (what the verifier needs); within a chain
// the records are in the order they were written. A block is read when its last record is
// at or after `since`, and its records before `since` are skipped.
Status MongoStore::scan_audit(TimePoint since,
                              const std::function<void(const AuditRecord&)>& sink) {
  record_acceptances();  // this store's own trail is read whole
  const std::int64_t from = to_unix_ms(since);
  const auto each = [&](json& doc) {
    for (const AuditRecord& record : rows::read_audit_block(doc)) {
      if (to_unix_ms(record.time) >= from) sink(record);
    }
  };
  // A block is up to a few hundred kB: a server that fills a reply with as many as its
  // default batch holds (FerretDB does, past the 48 MB a message may have) fails the scan.
  return db_->find("audit", {{"until", {{"$gte", from}}}},
                   {{"sort", {{"_id", 1}}}, {"batchSize", kAuditScanBatch}}, each);
}

// The acceptance's record has the time of the acceptance (the process's updatedAt), so it
// is in a block of some chain whose first and last records' times enclose it.
Status MongoStore::audit_acceptance_if_missing(const json& doc) {
  const std::string id = doc.value("_id", "");
  const std::int64_t at = doc.value("updatedAt", std::int64_t{0});
  const std::string named = "\"processId\":\"" + id + "\"";
  bool found = false;
  auto scanned = db_->find("audit", {{"time", {{"$lte", at}}}, {"until", {{"$gte", at}}}},
                           {{"batchSize", kAuditScanBatch}}, [&](json& block) {
                             if (found) return;
                             for (const AuditRecord& record : rows::read_audit_block(block)) {
                               if (record.record.find(named) != std::string::npos &&
                                   record.record.find("\"to\":\"accepted\"") != std::string::npos) {
                                 found = true;
                                 return;
                               }
                             }
                           });
  if (!scanned) return scanned;
  if (found) return {};
  const bool retried = doc.value("attempt", std::int64_t{1}) > 1;
  spdlog::warn("process {}: its acceptance was not in the audit trail; recorded now", id);
  return append_audit({{now_utc(),
                        "state",
                        {{"processId", id},
                         {"tenant", doc.value("tenant", "")},
                         {"from", retried ? json("failed") : json()},
                         {"to", "accepted"},
                         {"acceptedAt", format_timestamp(from_unix_ms(at))},
                         {"recordedLate", true}}}});
}

AuditEvent MongoStore::state_event(const std::string& process_id, const std::string& tenant,
                                   const char* from, const char* to, TimePoint now) {
  return {now,
          "state",
          {{"processId", process_id},
           {"tenant", tenant},
           {"from", from != nullptr ? json(from) : json()},
           {"to", to}}};
}

Status MongoStore::audit_state(const std::string& process_id, const std::string& tenant,
                               const char* from, const char* to, TimePoint now) {
  return append_audit({state_event(process_id, tenant, from, to, now)});
}

}  // namespace stargate::server
