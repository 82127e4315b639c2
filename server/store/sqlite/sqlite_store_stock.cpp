// SqliteStore: the order handler's stock reservations.
#include "server/store/sqlite/sqlite_store.hpp"

namespace stargate::server {

Expected<Reservation> SqliteStore::reserve_stock(const std::string& process_id,
                                                 const std::vector<StockLine>& lines) {
  return db::guarded("store", [&]() -> Expected<Reservation> {
    std::lock_guard lock(mutex_);
    db::Transaction tx(db_);
    auto held = db_.prepare("SELECT 1 FROM stock_reservations WHERE process_id = ? LIMIT 1");
    held.bind(1, process_id);
    if (held.step()) return Reservation{};  // run again: it keeps what it took the first time
    for (const auto& line : lines) {
      auto reserved = db_.prepare("SELECT reserved FROM stock_reserved WHERE sku = ?");
      reserved.bind(1, line.sku);
      const std::int64_t taken = reserved.step() ? reserved.integer(0) : 0;
      const std::int64_t available = units_left(line.stock, taken);
      if (line.quantity > available) return Reservation{false, line.sku, line.quantity, available};
    }
    for (const auto& line : lines) {
      db_.prepare("INSERT INTO stock_reservations (process_id, sku, quantity) VALUES (?, ?, ?)")
          .bind(1, process_id)
          .bind(2, line.sku)
          .bind(3, line.quantity)
          .run();
      db_.prepare(
             "INSERT INTO stock_reserved (sku, reserved) VALUES (?1, ?2) "
             "ON CONFLICT (sku) DO UPDATE SET reserved = reserved + ?2")
          .bind(1, line.sku)
          .bind(2, line.quantity)
          .run();
    }
    tx.commit();
    return Reservation{};
  });
}

Expected<std::map<std::string, std::int64_t>> SqliteStore::reserved_stock(
    const std::vector<std::string>& skus, const std::string& except_process) {
  return db::guarded("store", [&]() -> Expected<std::map<std::string, std::int64_t>> {
    auto lease = reader();
    db::Database& db = lease.db();
    std::map<std::string, std::int64_t> out;
    auto add = [&](db::Statement& row) {
      const std::int64_t own = [&] {
        auto mine =
            db.prepare("SELECT quantity FROM stock_reservations WHERE process_id = ? AND sku = ?");
        mine.bind(1, except_process).bind(2, row.text(0));
        return mine.step() ? mine.integer(0) : 0;
      }();
      if (const std::int64_t others = row.integer(1) - own; others > 0) out[row.text(0)] = others;
    };
    if (skus.empty()) {
      auto all = db.prepare("SELECT sku, reserved FROM stock_reserved ORDER BY sku");
      while (all.step())
        add(all);
    } else {
      for (const auto& sku : skus) {
        auto one = db.prepare("SELECT sku, reserved FROM stock_reserved WHERE sku = ?");
        one.bind(1, sku);
        if (one.step()) add(one);
      }
    }
    return out;
  });
}

}  // namespace stargate::server
