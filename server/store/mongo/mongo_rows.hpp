// Documents of the MongoDB store read back into records. A field that is missing or of the
// wrong type (a document edited by hand) reads as its default, never throws.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "server/store/store.hpp"

namespace stargate::server::mongo::rows {

ProcessRecord read_process(const nlohmann::json& doc);
ClientRecord read_client(const nlohmann::json& doc);

// The _id of audit record `seq`: its number as 20 digits, so that ids sort in order and a
// lookup by id is one every server answers from its index (FerretDB looks a numeric _id up
// by scanning the collection). The number is in the field "seq" as well.
std::string audit_id(std::int64_t seq);

}  // namespace stargate::server::mongo::rows
