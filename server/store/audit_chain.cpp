#include "server/store/audit_chain.hpp"

#include "server/common/digest.hpp"

namespace stargate::server {
namespace {

std::string link_hash(const std::string& prev_hash, const std::string& record) {
  return sha256_hex(prev_hash + "\n" + record);
}

}  // namespace

const std::string kAuditGenesis(64, '0');

AuditRecord chain_audit_record(std::int64_t prev_seq, const std::string& prev_hash,
                               const AuditEvent& event, const std::string& chain) {
  AuditRecord out;
  out.chain = chain;
  out.seq = prev_seq + 1;
  out.time = event.time;
  nlohmann::json record = event.fields;
  record["seq"] = out.seq;
  record["time"] = format_timestamp(event.time);
  record["kind"] = event.kind;
  if (!chain.empty()) record["chain"] = chain;
  out.record = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out.prev_hash = prev_hash;
  out.hash = link_hash(prev_hash, out.record);
  return out;
}

void AuditVerifier::add(const AuditRecord& record) {
  if (!check_.intact) return;
  auto [head, first] = heads_.try_emplace(record.chain);
  if (first) ++check_.chains;
  const std::int64_t expected_seq = head->second.seq + 1;
  std::string problem;
  if (record.seq != expected_seq) {
    problem = "record " + std::to_string(expected_seq) + " is missing";
  } else if (record.prev_hash != head->second.hash) {
    problem = "does not follow the record before it (one was edited or deleted)";
  } else if (link_hash(record.prev_hash, record.record) != record.hash) {
    problem = "its content does not match its hash (edited)";
  } else {
    auto parsed = nlohmann::json::parse(record.record, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object() || parsed.value("seq", -1) != record.seq) {
      problem = "its sequence number was changed";
    } else if (parsed.value("chain", "") != record.chain) {
      problem = "it was moved from another chain";
    }
  }
  if (!problem.empty()) {
    check_.intact = false;
    check_.bad_chain = record.chain;
    check_.bad_seq = record.seq;
    check_.problem = std::move(problem);
    check_.head_hash.clear();
    return;
  }
  head->second = {record.seq, record.hash};
  check_.head_hash = record.hash;
  ++check_.records;
}

Expected<AuditCheck> verify_audit(AuditStore& store) {
  AuditVerifier verifier;
  auto scanned = store.scan_audit(TimePoint{}, [&](const AuditRecord& r) { verifier.add(r); });
  if (!scanned) return Unexpected{scanned.error()};
  return verifier.result();
}

}  // namespace stargate::server
