// Documents of the MongoDB store read back into records. A field that is missing or of the
// wrong type (a document edited by hand) reads as its default, never throws.
#pragma once

#include <nlohmann/json.hpp>

#include "server/store/store.hpp"

namespace stargate::server::mongo::rows {

ProcessRecord read_process(const nlohmann::json& doc);
ClientRecord read_client(const nlohmann::json& doc);

}  // namespace stargate::server::mongo::rows
