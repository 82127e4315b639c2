// Helpers shared by the SqliteStore translation units: reading rows, and turning database
// errors into values at the store's public boundary.
#pragma once

#include <string>

#include "server/store.hpp"
#include "shared/sqlite.hpp"

namespace stargate::server::rows {

inline constexpr const char* kClientColumns =
    "client_id, tenant, secret_hash, process_types, created_at, revoked";

ClientRecord read_client(const db::Statement& row);

// Runs `body`, turning a database error into a value.
template <typename F>
auto guarded(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const db::DbError& e) {
    return fail(std::string("store: ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("store: corrupt JSON in the database: ") + e.what());
  }
}

}  // namespace stargate::server::rows
