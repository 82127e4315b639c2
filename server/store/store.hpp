// The server's store, as ports by concern: clients and tokens, processes, idempotency
// keys, the work queue, stock and the audit trail. Each part of the server takes the ports
// it uses; a backend (store/sqlite/, later Redis + MongoDB) implements them all as one
// Store. Ports hold storage primitives only: the decisions every backend would otherwise
// repeat (replay or conflict for a reused key in processes/, the audit hash chain in
// store/audit_chain) sit above them. Every method is safe to call from several threads at
// once and reports failures as values.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/clock.hpp"
#include "shared/codec.hpp"
#include "shared/duration.hpp"
#include "shared/expected.hpp"
#include "shared/process_state.hpp"

namespace stargate::server {

struct ClientRecord {
  ClientRecord() = default;
  ClientRecord(std::string id, std::string tenant_name, std::string hash,
               std::vector<std::string> types, TimePoint created, bool is_revoked)
      : client_id(std::move(id)),
        tenant(std::move(tenant_name)),
        secret_hash(std::move(hash)),
        process_types(std::move(types)),
        created_at(created),
        revoked(is_revoked) {}

  std::string client_id;
  std::string tenant;
  std::string secret_hash;  // Argon2id, libsodium's crypto_pwhash_str format
  std::vector<std::string> process_types;
  TimePoint created_at{};
  bool revoked = false;
  // After a rotation: the secret it replaced, accepted too until `previous_secret_until`.
  std::string previous_secret_hash;
  std::optional<TimePoint> previous_secret_until;

  // Whether the secret it replaced is still accepted at `now`.
  bool previous_secret_valid(TimePoint now) const {
    return !previous_secret_hash.empty() && previous_secret_until && now < *previous_secret_until;
  }
};

// Everything the store keeps of one process.
struct ProcessRecord {
  std::string tenant;
  std::string client_id;
  nlohmann::json data = nlohmann::json::object();
  int attempt = 1;
  std::string correlation_id;  // of the request that submitted it, for tracing
  ProcessView view;            // the fields the status API answers with
};

// What a submit asks the store to create.
struct NewProcess {
  std::string tenant;
  std::string client_id;
  SubmitRequest request;
  std::string request_hash;  // SHA-256 of the canonical request, to compare replays
  std::string correlation_id;
  TimePoint now{};
  std::optional<TimePoint> estimated_completion;
};

// The outcome of ProcessStore::create_process(): the new process, or (nothing written) the
// process an earlier request with the same idempotency key made, with that request's hash.
struct Insertion {
  bool inserted = true;
  ProcessRecord process;
  std::string held_request_hash;  // when not inserted
};

// A refresh token as the store keeps it: only its hash.
struct RefreshToken {
  std::string hash;
  std::string client_id;
  std::string family;  // all tokens rotated from one grant
  std::string scopes;  // space separated
  TimePoint expires_at{};
};

// The outcome of presenting a refresh token.
struct RefreshResult {
  enum class Kind {
    kRotated,  // valid: it is now used up and `next` replaces it
    kReused,   // already used once: its whole family is revoked
    kInvalid,  // unknown, expired, or its client or family revoked
  } kind = Kind::kInvalid;
  ClientRecord client;
  RefreshToken next;
};

// One entry of the audit trail, before it is chained.
struct AuditEvent {
  TimePoint time{};
  std::string kind;       // "request", "state" or "admin"
  nlohmann::json fields;  // what happened; never a secret, token or Authorization header
};

// One entry as stored: `record` is the exact JSON text that was hashed, and
// hash = SHA-256(prev_hash + "\n" + record).
struct AuditRecord {
  std::string chain;  // whose chain: "" where one chain holds every record (see audit_chain)
  std::int64_t seq = 0;
  TimePoint time{};
  std::string record;
  std::string prev_hash;
  std::string hash;
};

struct ProcessCounts {
  std::map<std::string, std::int64_t> by_status;  // "accepted" -> 3, ...
  std::int64_t queued = 0;                        // waiting for a worker
};

// One SKU of an order: how many units it asks for, and how many units the handler may sell
// in all (its configured stock).
struct StockLine {
  std::string sku;
  std::int64_t quantity = 0;
  std::int64_t stock = 0;
};

// Units of a SKU left to sell: its stock less what orders hold (never below 0, even after
// the stock was lowered).
inline std::int64_t units_left(std::int64_t stock, std::int64_t reserved) {
  return stock > reserved ? stock - reserved : 0;
}

// The outcome of reserve_stock(): reserved, or the first line that is short.
struct Reservation {
  bool reserved = true;
  std::string sku;  // when short
  std::int64_t requested = 0;
  std::int64_t available = 0;
};

struct ListQuery {
  std::string tenant;
  std::optional<ProcessStatus> status;
  std::string process_type;
  std::size_t limit = 50;
  std::string cursor;  // the last process id of the previous page
};

// What the change feed asks for: the tenant's processes that changed after `cursor`.
struct ChangeQuery {
  std::string tenant;
  std::string cursor;  // from an earlier page; empty: from now on
  std::size_t limit = 100;
};

// One page of the change feed.
struct ChangePage {
  // False when the cursor is not one this store gave out, or points at changes it no longer
  // keeps: the caller must read its processes one by one and start again without a cursor.
  bool cursor_known = true;
  std::vector<ProcessRecord> processes;  // oldest change first, each once, as it is now
  std::string cursor;                    // where the next page starts
  bool more = false;                     // the page is full: ask again at once
};

// Clients and their refresh-token families.
class ClientStore {
 public:
  virtual ~ClientStore() = default;

  virtual Status add_client(const ClientRecord& client) = 0;
  virtual Expected<std::optional<ClientRecord>> find_client(const std::string& client_id) = 0;
  virtual Expected<std::vector<ClientRecord>> list_clients() = 0;
  // Revokes a client and every token family it holds; fails for an unknown id.
  virtual Status revoke_client(const std::string& client_id, TimePoint now) = 0;
  // Gives the client the secret hashed as `secret_hash`; the one it had stays accepted until
  // `previous_until` (not at all when std::nullopt). Fails for an unknown or revoked client,
  // and when the secret changed meanwhile (another rotation at the same time). The secret it
  // held before that one is forgotten.
  virtual Status rotate_client_secret(const std::string& client_id, const std::string& secret_hash,
                                      std::optional<TimePoint> previous_until) = 0;

  // Starts a token family with its first refresh token.
  virtual Status add_refresh_token(const RefreshToken& token) = 0;
  // Uses up the token whose hash is `hash` and, when it was valid, stores its successor
  // (`next_hash`, valid until `next_expiry`) in the same family. Atomic.
  virtual Expected<RefreshResult> rotate_refresh_token(const std::string& hash,
                                                       const std::string& next_hash,
                                                       TimePoint next_expiry, TimePoint now) = 0;
  // Whether access tokens of this client and family may still be used: the client exists and
  // is not revoked, and neither is the family.
  virtual Expected<bool> token_usable(const std::string& client_id, const std::string& family) = 0;
};

// Processes as the process API sees them.
class ProcessStore {
 public:
  virtual ~ProcessStore() = default;

  // Creates the process in state accepted and puts it on the work queue, atomically with its
  // idempotency key (keyed by tenant and key) when it has one; when that key is already
  // held, writes nothing and returns the process it points to.
  virtual Expected<Insertion> create_process(const NewProcess& process) = 0;

  // std::nullopt when there is no such process for this tenant (another tenant's id
  // included).
  virtual Expected<std::optional<ProcessRecord>> get_process(const std::string& tenant,
                                                             const std::string& process_id) = 0;
  virtual Expected<std::vector<ProcessRecord>> list_processes(const ListQuery& query) = 0;

  // Starts a new attempt of a failed, retryable process: back to accepted and on the queue,
  // same process id, with a new estimated completion time (none when not known).
  // kNotFound also for another tenant's process.
  enum class RetryOutcome { kRetried, kNotRetryable, kNotFound };
  virtual Expected<RetryOutcome> retry_process(const std::string& tenant,
                                               const std::string& process_id, TimePoint now,
                                               std::optional<TimePoint> estimated_completion) = 0;

  virtual Expected<ProcessCounts> process_counts() = 0;
};

// Changes of processes in the order they were committed, for the change feed. Each change
// (accepted, processing, progress, completed, failed, retried) moves the process past every
// change committed before it, so a reader that goes on from its cursor misses none.
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;

  // Whether this backend keeps the feed; when not, the gateway does not offer the route.
  virtual bool has_change_feed() const { return false; }
  virtual Expected<ChangePage> changes_after(const ChangeQuery& /*query*/) {
    return fail("store: no change feed on this backend");
  }
  // `listener` hears the tenant of each process whose change was just committed, on the
  // thread that committed it; it must be quick and must not call the store. Set it once,
  // before the store is shared.
  virtual void on_change(std::function<void(const std::string& tenant)> /*listener*/) {}
};

// Idempotency keys outlive the requests that made them for a while (at least 24 h).
class IdempotencyKeys {
 public:
  virtual ~IdempotencyKeys() = default;
  // Forgets idempotency keys created before `before`. Returns how many.
  virtual Expected<std::size_t> prune_idempotency_keys(TimePoint before) = 0;
};

// The engine's side of processes: taking queued ones and recording how they went.
class WorkQueue {
 public:
  virtual ~WorkQueue() = default;

  // Takes the oldest queued process and marks it processing; std::nullopt when none waits.
  virtual Expected<std::optional<ProcessRecord>> claim_next(TimePoint now) = 0;
  // Whether claim_next() itself waits a moment for work when there is none (so that the
  // engine need not sleep before it asks again).
  virtual bool claim_waits() const { return false; }
  virtual Status update_progress(const std::string& process_id, int progress,
                                 const std::string& step, TimePoint now) = 0;
  virtual Status complete(const std::string& process_id, const nlohmann::json& result,
                          TimePoint now) = 0;
  virtual Status fail_process(const std::string& process_id, const ProcessError& error,
                              bool retryable, TimePoint now) = 0;
  // Since when the process at the head of the work queue has waited (accepted, retried or
  // requeued); std::nullopt when nothing waits.
  virtual Expected<std::optional<TimePoint>> oldest_queued() = 0;
  // Puts processes left in state processing by a worker that stopped or crashed back on the
  // queue: every one, for a store with one worker; those whose lease ended before `now`,
  // where workers hold leases. Returns how many.
  virtual Expected<std::size_t> requeue_interrupted(TimePoint now) = 0;

  // Where several workers share the queue, a claim is a lease: it must be renewed at least
  // this often while the handler runs, or another worker takes the process over. Zero when
  // this program is the only worker (no lease).
  virtual Duration renew_every() const { return Duration::zero(); }
  // Renews this worker's lease on a process it runs.
  virtual Status renew_lease(const std::string& /*process_id*/, TimePoint /*now*/) { return {}; }
  // Whether this worker still holds the process (false: its lease ran out and another worker
  // took it over, so this worker's outcome is not the one that counts).
  virtual Expected<bool> holds(const std::string& /*process_id*/) { return true; }
};

// Units of stock that orders hold.
class StockStore {
 public:
  virtual ~StockStore() = default;

  // Reserves every line for the process, or none: a line is short when the units other
  // processes hold plus its quantity exceed its stock. A process that already holds its
  // reservation (run again after a restart) keeps it and takes nothing more. Atomic.
  virtual Expected<Reservation> reserve_stock(const std::string& process_id,
                                              const std::vector<StockLine>& lines) = 0;
  // Units of each SKU that processes other than `except_process` hold; SKUs that no process
  // holds are left out. Every SKU when `skus` is empty.
  virtual Expected<std::map<std::string, std::int64_t>> reserved_stock(
      const std::vector<std::string>& skus, const std::string& except_process) = 0;
};

// The audit trail: records chained by store/audit_chain, kept in order of their seq.
class AuditStore {
 public:
  virtual ~AuditStore() = default;

  // Appends events to the audit trail, each chained to the one before, atomically.
  virtual Status append_audit(const std::vector<AuditEvent>& events) = 0;
  // Calls `sink` for every record at or after `since`, in order of seq.
  virtual Status scan_audit(TimePoint since,
                            const std::function<void(const AuditRecord&)>& sink) = 0;
};

// Everything a backend provides.
class Store : public ClientStore,
              public ProcessStore,
              public ChangeFeed,
              public IdempotencyKeys,
              public WorkQueue,
              public StockStore,
              public AuditStore {
 public:
  // Whether the store takes writes now, for the readiness probe: changes nothing, and fails
  // within about a second when writes would fail (the store locked by another program,
  // read-only or gone).
  virtual Status check_writable() = 0;
  // What readiness calls it when check_writable() fails: "store", or the engine's name.
  virtual const char* readiness_name() const { return "store"; }
};

}  // namespace stargate::server
