// Helpers shared by the SqliteStore translation units: reading rows, and turning database
// errors into values at the store's public boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "server/store/store.hpp"
#include "shared/sqlite.hpp"

namespace stargate::server::rows {

inline constexpr const char* kClientColumns =
    "client_id, tenant, secret_hash, process_types, created_at, revoked, previous_secret_hash, "
    "previous_secret_until";

ClientRecord read_client(const db::Statement& row);

// A time as a column holds it: unix ms, or NULL for none.
inline std::optional<std::int64_t> unix_ms_or_null(const std::optional<TimePoint>& time) {
  if (!time) return std::nullopt;
  return to_unix_ms(*time);
}

inline constexpr const char* kProcessColumns =
    "process_id, tenant, client_id, client_process_id, process_type, data, status, progress, "
    "current_step, result, error, retryable, attempt, created_at, updated_at, finished_at, "
    "estimated_completion, correlation_id";

// A row of kProcessColumns.
ProcessRecord read_process(const db::Statement& row);

}  // namespace stargate::server::rows
