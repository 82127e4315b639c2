// Helpers shared by the SqliteStore translation units: reading rows, and turning database
// errors into values at the store's public boundary.
#pragma once

#include <string>

#include "server/store/store.hpp"
#include "shared/sqlite.hpp"

namespace stargate::server::rows {

inline constexpr const char* kClientColumns =
    "client_id, tenant, secret_hash, process_types, created_at, revoked";

ClientRecord read_client(const db::Statement& row);

inline constexpr const char* kProcessColumns =
    "process_id, tenant, client_id, client_process_id, process_type, data, status, progress, "
    "current_step, result, error, retryable, attempt, created_at, updated_at, finished_at, "
    "estimated_completion, correlation_id";

// A row of kProcessColumns.
ProcessRecord read_process(const db::Statement& row);

}  // namespace stargate::server::rows
