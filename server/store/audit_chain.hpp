// The audit trail's hash chain, the same for every backend: each record is the exact JSON
// text that was hashed, and hash = SHA-256(prev_hash + "\n" + record), starting from 64
// zeros. A backend only stores records in order of seq; making them and checking them
// happens here. A backend with several writers may give each its own chain (named in every
// record, seq from 1 in each): the chains are verified together, each on its own.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "server/store/store.hpp"

namespace stargate::server {

// The prev_hash of the first record.
extern const std::string kAuditGenesis;

// The record that follows one whose seq and hash are given (0 and kAuditGenesis for the
// first) in `chain`: the event's fields with seq, time, kind (and the chain's name, unless
// ""), as text, and its hash.
AuditRecord chain_audit_record(std::int64_t prev_seq, const std::string& prev_hash,
                               const AuditEvent& event, const std::string& chain = "");

struct AuditCheck {
  bool intact = true;
  std::int64_t records = 0;
  std::int64_t chains = 0;
  std::string head_hash;  // of the last record: note it elsewhere to detect truncation
  std::string bad_chain;
  std::int64_t bad_seq = 0;
  std::string problem;
};

// Checks records handed to it in order of seq from the first of each chain (chains may
// come one after the other or interleaved): finds edited, inserted and deleted records, and
// records moved to another chain. After the first problem it ignores the rest.
class AuditVerifier {
 public:
  void add(const AuditRecord& record);
  const AuditCheck& result() const { return check_; }

 private:
  struct Head {
    std::int64_t seq = 0;
    std::string hash = kAuditGenesis;
  };
  std::map<std::string, Head> heads_;
  AuditCheck check_{true, 0, 0, kAuditGenesis, {}, 0, {}};
};

// Recomputes the whole chain of a store.
Expected<AuditCheck> verify_audit(AuditStore& store);

}  // namespace stargate::server
