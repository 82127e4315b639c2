// SqliteStore: clients, refresh tokens and their families.
#include <sstream>

#include "server/store/sqlite/sqlite_rows.hpp"
#include "server/store/sqlite/sqlite_store.hpp"

namespace stargate::server {

ClientRecord rows::read_client(const db::Statement& row) {
  ClientRecord client;
  client.client_id = row.text(0);
  client.tenant = row.text(1);
  client.secret_hash = row.text(2);
  std::istringstream types(row.text(3));
  for (std::string type; types >> type;)
    client.process_types.push_back(type);
  client.created_at = from_unix_ms(row.integer(4));
  client.revoked = row.integer(5) != 0;
  client.previous_secret_hash = row.text(6);
  if (auto until = row.optional_integer(7)) client.previous_secret_until = from_unix_ms(*until);
  return client;
}

Status SqliteStore::add_client(const ClientRecord& client) {
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    std::string types;
    for (const auto& type : client.process_types)
      types += (types.empty() ? "" : " ") + type;
    db_.prepare(std::string("INSERT INTO clients (") + rows::kClientColumns +
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(1, client.client_id)
        .bind(2, client.tenant)
        .bind(3, client.secret_hash)
        .bind(4, types)
        .bind(5, to_unix_ms(client.created_at))
        .bind(6, client.revoked ? 1 : 0)
        .bind(7, client.previous_secret_hash)
        .bind(8, rows::unix_ms_or_null(client.previous_secret_until))
        .run();
    return {};
  });
}

Expected<std::optional<ClientRecord>> SqliteStore::find_client(const std::string& client_id) {
  return db::guarded("store", [&]() -> Expected<std::optional<ClientRecord>> {
    auto lease = reader();
    db::Database& db = lease.db();
    auto stmt = db.prepare(std::string("SELECT ") + rows::kClientColumns +
                           " FROM clients WHERE client_id = ?");
    stmt.bind(1, client_id);
    if (!stmt.step()) return std::optional<ClientRecord>{};
    return std::optional<ClientRecord>{rows::read_client(stmt)};
  });
}

Expected<std::vector<ClientRecord>> SqliteStore::list_clients() {
  return db::guarded("store", [&]() -> Expected<std::vector<ClientRecord>> {
    auto lease = reader();
    db::Database& db = lease.db();
    auto stmt = db.prepare(std::string("SELECT ") + rows::kClientColumns +
                           " FROM clients ORDER BY created_at, client_id");
    std::vector<ClientRecord> out;
    while (stmt.step())
      out.push_back(rows::read_client(stmt));
    return out;
  });
}

Status SqliteStore::revoke_client(const std::string& client_id, TimePoint) {
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    db_.prepare("UPDATE clients SET revoked = 1 WHERE client_id = ?").bind(1, client_id).run();
    if (db_.changes() != 1) return fail("no such client: " + client_id);
    db_.prepare("UPDATE token_families SET revoked = 1 WHERE client_id = ?")
        .bind(1, client_id)
        .run();
    tx.commit();
    return {};
  });
}

Status SqliteStore::rotate_client_secret(const std::string& client_id,
                                         const std::string& secret_hash,
                                         std::optional<TimePoint> previous_until) {
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db_.prepare(
           "UPDATE clients SET previous_secret_hash = secret_hash, previous_secret_until = ?, "
           "secret_hash = ? WHERE client_id = ? AND revoked = 0")
        .bind(1, rows::unix_ms_or_null(previous_until))
        .bind(2, secret_hash)
        .bind(3, client_id)
        .run();
    if (db_.changes() != 1) return fail("no such client, or revoked: " + client_id);
    return {};
  });
}

Status SqliteStore::add_refresh_token(const RefreshToken& token) {
  return db::guarded("store", [&]() -> Status {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    db_.prepare("INSERT INTO token_families (family, client_id, created_at) VALUES (?, ?, ?)")
        .bind(1, token.family)
        .bind(2, token.client_id)
        .bind(3, to_unix_ms(now_utc()))
        .run();
    db_.prepare("INSERT INTO refresh_tokens (hash, family, scopes, expires_at) VALUES (?, ?, ?, ?)")
        .bind(1, token.hash)
        .bind(2, token.family)
        .bind(3, token.scopes)
        .bind(4, to_unix_ms(token.expires_at))
        .run();
    tx.commit();
    return {};
  });
}

Expected<RefreshResult> SqliteStore::rotate_refresh_token(const std::string& hash,
                                                          const std::string& next_hash,
                                                          TimePoint next_expiry, TimePoint now) {
  return db::guarded("store", [&]() -> Expected<RefreshResult> {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    auto lookup = db_.prepare(
        "SELECT t.family, t.scopes, t.expires_at, t.used_at, f.revoked, f.client_id "
        "FROM refresh_tokens t JOIN token_families f ON f.family = t.family WHERE t.hash = ?");
    lookup.bind(1, hash);
    RefreshResult result;
    if (!lookup.step()) return result;  // unknown
    const std::string family = lookup.text(0);
    const std::string scopes = lookup.text(1);
    const bool expired = lookup.integer(2) <= to_unix_ms(now);
    const bool used = !lookup.is_null(3);
    const bool family_revoked = lookup.integer(4) != 0;
    const std::string client_id = lookup.text(5);
    if (used && !family_revoked) {
      // A used token presented again: it was stolen, or its successor was. Revoke them all.
      db_.prepare("UPDATE token_families SET revoked = 1 WHERE family = ?").bind(1, family).run();
      tx.commit();
      result.kind = RefreshResult::Kind::kReused;
      return result;
    }
    if (used || expired || family_revoked) return result;
    auto client = db_.prepare(std::string("SELECT ") + rows::kClientColumns +
                              " FROM clients WHERE client_id = ?");
    client.bind(1, client_id);
    if (!client.step()) return result;
    result.client = rows::read_client(client);
    if (result.client.revoked) return result;
    db_.prepare("UPDATE refresh_tokens SET used_at = ? WHERE hash = ?")
        .bind(1, to_unix_ms(now))
        .bind(2, hash)
        .run();
    result.next = {next_hash, client_id, family, scopes, next_expiry};
    db_.prepare("INSERT INTO refresh_tokens (hash, family, scopes, expires_at) VALUES (?, ?, ?, ?)")
        .bind(1, next_hash)
        .bind(2, family)
        .bind(3, scopes)
        .bind(4, to_unix_ms(next_expiry))
        .run();
    tx.commit();
    result.kind = RefreshResult::Kind::kRotated;
    return result;
  });
}

Expected<bool> SqliteStore::token_usable(const std::string& client_id, const std::string& family) {
  return db::guarded("store", [&]() -> Expected<bool> {
    auto lease = reader();
    db::Database& db = lease.db();
    auto stmt = db.prepare(
        "SELECT c.revoked, (SELECT revoked FROM token_families WHERE family = ?2) "
        "FROM clients c WHERE c.client_id = ?1");
    stmt.bind(1, client_id).bind(2, family);
    if (!stmt.step()) return false;
    return stmt.integer(0) == 0 && (stmt.is_null(1) || stmt.integer(1) == 0);
  });
}

}  // namespace stargate::server
