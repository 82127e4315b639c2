// SqliteStore: the change feed. Every change of a process gives it the next position from
// the change_feed row, inside the transaction that makes the change, so positions follow
// commit order; a cursor names the database (its epoch) and a position.
#include "server/store/sqlite/sqlite_rows.hpp"
#include "server/store/sqlite/sqlite_store.hpp"

namespace stargate::server {

void SqliteStore::load_feed_epoch() {
  auto stmt = db_.prepare("SELECT epoch FROM change_feed WHERE id = 1");
  if (!stmt.step()) throw std::runtime_error(db_.path() + ": change_feed is empty");
  feed_epoch_ = stmt.text(0);
}

std::int64_t SqliteStore::next_change_locked() {
  auto stmt =
      db_.prepare("UPDATE change_feed SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq");
  stmt.step();
  return stmt.integer(0);
}

// A cursor is "<epoch>-<change_seq>": the position of the last change its reader saw.
Expected<ChangePage> SqliteStore::changes_after(const ChangeQuery& query) {
  return db::guarded("store", [&]() -> Expected<ChangePage> {
    auto lease = reader();
    db::Database& db = lease.db();
    auto head = db.prepare("SELECT last_seq FROM change_feed WHERE id = 1");
    if (!head.step()) return fail("store: change_feed is empty");
    const std::int64_t last = head.integer(0);
    ChangePage page;
    if (query.cursor.empty()) {
      page.cursor = feed_epoch_ + "-" + std::to_string(last);
      return page;
    }
    const auto dash = query.cursor.find('-');
    const std::string digits = dash == std::string::npos ? "" : query.cursor.substr(dash + 1);
    if (query.cursor.substr(0, dash) != feed_epoch_ || digits.empty() || digits.size() > 18 ||
        digits.find_first_not_of("0123456789") != std::string::npos || std::stoll(digits) > last) {
      page.cursor_known = false;
      return page;
    }
    std::int64_t position = std::stoll(digits);
    auto stmt = db.prepare(std::string("SELECT ") + rows::kProcessColumns +
                           ", change_seq FROM processes WHERE tenant = ? AND change_seq > ? "
                           "ORDER BY change_seq LIMIT ?");
    stmt.bind(1, query.tenant).bind(2, position).bind(3, static_cast<std::int64_t>(query.limit));
    while (stmt.step()) {
      page.processes.push_back(rows::read_process(stmt));
      position = stmt.integer(18);
    }
    page.more = page.processes.size() == query.limit;
    page.cursor = feed_epoch_ + "-" + std::to_string(position);
    return page;
  });
}

}  // namespace stargate::server
