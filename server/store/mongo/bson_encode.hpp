// JSON documents into BSON for the MongoDB driver, walked value by value: what
// bson_new_from_json makes of the document's JSON text, without writing the text and
// parsing it again (on a busy gateway that round trip was 8% of its time).
#pragma once

#include <bson/bson.h>

#include <nlohmann/json.hpp>

namespace stargate::server::mongo {

// Appends the members of `object` (a JSON object) to `out`: integers as int32 when they
// fit, else int64; other numbers as double; strings, booleans, null, objects and arrays as
// themselves. False, with `out` half written, for what only the text route encodes as it
// does (invalid UTF-8, which it replaces; numbers it writes as null or refuses; an object
// that extended JSON reads as a type, such as {"$date": ...}; a key with a NUL): the caller
// then encodes the text instead.
bool append_members(bson_t* out, const nlohmann::json& object);

}  // namespace stargate::server::mongo
