// Documents of the MongoDB store read back into records. A field that is missing or of the
// wrong type (a document edited by hand) reads as its default, never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/store/store.hpp"

namespace stargate::server::mongo::rows {

ProcessRecord read_process(const nlohmann::json& doc);
ClientRecord read_client(const nlohmann::json& doc);

// A time as a document holds it: unix ms, or null for none.
inline nlohmann::json unix_ms_or_null(const std::optional<TimePoint>& time) {
  return time ? nlohmann::json(to_unix_ms(*time)) : nlohmann::json();
}

// The audit trail is kept in blocks: one document holds the records of one chain that one
// insert wrote (up to a few hundred), in order, so that a busy gateway's records cost one
// journaled document each batch rather than one each. A block's _id is its chain's name,
// "/" and the block's number as 20 digits, so that ids sort by chain and in order within
// it, and a lookup by id is one MongoDB answers from its index (FerretDB's SQLite handler
// passes only a string _id to SQLite; a numeric one it looks up by decoding the collection). The
// fields: chain, block, firstSeq, lastSeq, time and until (the earliest and the latest of its
// records' times, unix ms) and records: one text, a line a record (seq, time, prevHash, hash
// and the record, tab-separated), which MongoDB-compatible servers store for a third of what as
// many subdocuments cost them. The hashes cover each record's text, which names its chain and
// seq, so an edit of a block's fields or records is found by audit verify.
std::string audit_id(const std::string& chain, std::int64_t block);
nlohmann::json audit_block(const std::string& chain, std::int64_t block,
                           const std::vector<AuditRecord>& records);
// Each record of a block, in order; a line that is not a record is left out (audit verify
// then finds its record missing).
std::vector<AuditRecord> read_audit_block(const nlohmann::json& doc);

}  // namespace stargate::server::mongo::rows
