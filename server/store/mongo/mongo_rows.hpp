// Documents of the MongoDB store read back into records. A field that is missing or of the
// wrong type (a document edited by hand) reads as its default, never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "server/store/store.hpp"

namespace stargate::server::mongo::rows {

ProcessRecord read_process(const nlohmann::json& doc);
ClientRecord read_client(const nlohmann::json& doc);

// A time as a document holds it: unix ms, or null for none.
inline nlohmann::json unix_ms_or_null(const std::optional<TimePoint>& time) {
  return time ? nlohmann::json(to_unix_ms(*time)) : nlohmann::json();
}

// The _id of record `seq` of the audit chain `chain` (its writer's): the chain's name, "/"
// and the number as 20 digits, so that ids sort by chain and in order within it, and a
// lookup by id is one every server answers from its index (FerretDB looks a numeric _id up
// by scanning the collection). Chain and number are in the fields "chain" and "seq" too.
std::string audit_id(const std::string& chain, std::int64_t seq);
AuditRecord read_audit(const nlohmann::json& doc);

}  // namespace stargate::server::mongo::rows
