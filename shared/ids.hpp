// Identifiers: UUIDv4 for clientProcessId, idempotency keys and correlation ids;
// PROC-YYYYMMDD-NNNNN for the gateway's process ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/clock.hpp"

namespace stargate {

// A random (version 4) UUID in lowercase canonical form. Unique, but not meant to be
// unguessable: never use it as a secret.
std::string new_uuid();

// Canonical 8-4-4-4-12 hex form, either case, any version.
bool is_uuid(std::string_view text);

// "PROC-20260114-00001": the UTC day of `day` and a per-day sequence number (at least five
// digits, more once a day passes 99,999 processes).
std::string format_process_id(TimePoint day, std::uint64_t sequence);

// Whether `text` has the shape format_process_id() produces.
bool is_process_id(std::string_view text);

// Client-chosen ids (clientProcessId, idempotency keys, correlation ids): 1 to 128 characters
// of letters, digits and "-_.:". Keeps ids safe to put in URLs, logs and file names.
bool is_safe_id(std::string_view text);

}  // namespace stargate
