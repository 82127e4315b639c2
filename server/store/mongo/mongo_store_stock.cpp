// MongoStore: the order handler's stock, as one ledger of entries for each SKU.
//
// Without transactions (FerretDB has none) and without an atomic update (FerretDB applies
// one by reading the document and writing it back), a SKU's reserved units are kept in
// entries that are never changed: entry n (stock_ledger, _id "SKU\nn") holds the units
// reserved after it, and is written only as the insert of that _id, which one writer wins.
// An order reads the last entry, checks its units against the stock, and inserts the next
// entry with them added; a writer that lost the race reads the entries it missed and tries
// again. So an order costs a few lookups of one _id (which MongoDB answers from its
// index) however long the SKU's history, and no unit is sold twice. Entry 0 of a SKU
// (stock_skus, _id the SKU) starts its ledger with the units that an earlier version's
// lines (stock_lines, never written now) hold, and lists the SKUs.
//
// Each line of an order first records its intent (stock_takes, _id "PROCESS\nSKU"): its
// quantity and the SKU's last entry before it. Every entry names the process it is for, so a
// run again (its worker died, or its lease ran out under a slow one) reads the entries after
// that one, finds what the process took already, and takes nothing twice. An order short of
// one SKU gives back what it took of the others (entries of negative units), then drops its
// intents. Once every line is taken, its hold (stock_holds, _id the process) says so.
#include <algorithm>

#include "server/store/mongo/mongo_store.hpp"

namespace stargate::server {

using nlohmann::json;

namespace {

std::string entry_id(const std::string& sku, std::int64_t n) {
  return sku + "\n" + std::to_string(n);
}

std::string intent_id(const std::string& process_id, const std::string& sku) {
  return process_id + "\n" + sku;
}

// Each lost race means another writer's entry went in: this many in a row is a ledger
// written faster than one order can follow, reported as a failure (the handler tries again).
constexpr int kLedgerTries = 1000;

}  // namespace

Expected<std::optional<json>> MongoStore::find_by_id(const std::string& collection,
                                                     const std::string& id) {
  std::optional<json> found;
  auto scanned = db_->find(collection, {{"_id", id}}, {{"limit", 1}},
                           [&](json& doc) { found = std::move(doc); });
  if (!scanned) return Unexpected{scanned.error()};
  return found;
}

void MongoStore::remember_head(const std::string& sku, const LedgerHead& head) {
  std::lock_guard lock(stock_mutex_);
  auto [known, added] = stock_heads_.try_emplace(sku, head);
  if (!added && head.n > known->second.n) known->second = head;
}

// Entry 0 of the SKU's ledger: the units an earlier version's lines hold. Made when
// `create` and it is not there yet (by one writer; any other finds the same sum); without,
// a SKU with no ledger yet reads as that sum, `made` false.
Expected<MongoStore::LedgerStart> MongoStore::ledger_start(const std::string& sku, bool create) {
  auto start = find_by_id("stock_skus", sku);
  if (!start) return Unexpected{start.error()};
  if (*start) return LedgerStart{(*start)->value("reserved", std::int64_t{0}), true};
  std::int64_t earlier = 0;
  auto summed = db_->aggregate(
      "stock_lines",
      json::array({{{"$match", {{"sku", sku}}}},
                   {{"$group", {{"_id", nullptr}, {"n", {{"$sum", "$quantity"}}}}}}}),
      [&](json& row) { earlier = row.value("n", std::int64_t{0}); });
  if (!summed) return Unexpected{summed.error()};
  if (!create) return LedgerStart{earlier, false};
  auto made = db_->write("insert", "stock_skus",
                         {{"documents", json::array({{{"_id", sku}, {"reserved", earlier}}})}});
  if (!made) return Unexpected{made.error()};
  return LedgerStart{earlier, true};
}

// The SKU's last entry: from the last one this store saw, a gallop over lookups of _id.
Expected<MongoStore::LedgerHead> MongoStore::ledger_head(const std::string& sku, bool create) {
  std::optional<LedgerHead> known;
  {
    std::lock_guard lock(stock_mutex_);
    if (auto found = stock_heads_.find(sku); found != stock_heads_.end()) known = found->second;
  }
  if (!known) {
    auto start = ledger_start(sku, create);
    if (!start) return Unexpected{start.error()};
    if (!start->made) return LedgerHead{0, start->reserved};  // no entry follows one not made
    known = LedgerHead{0, start->reserved};
  }
  LedgerHead head = *known;
  auto missing = first_missing(known->n + 1, [&](std::int64_t n) -> Expected<bool> {
    auto entry = find_by_id("stock_ledger", entry_id(sku, n));
    if (!entry) return Unexpected{entry.error()};
    if (*entry && n > head.n) head = {n, (*entry)->value("reserved", std::int64_t{0})};
    return entry->has_value();
  });
  if (!missing) return Unexpected{missing.error()};
  remember_head(sku, head);
  return head;
}

// Reads the entries after scan.head, one by one, adding those of `process_id` to scan.own.
Status MongoStore::ledger_follow(const std::string& sku, LedgerScan& scan,
                                 const std::string& process_id) {
  for (;;) {
    auto entry = find_by_id("stock_ledger", entry_id(sku, scan.head.n + 1));
    if (!entry) return Unexpected{entry.error()};
    if (!*entry) break;
    scan.head = {scan.head.n + 1, (*entry)->value("reserved", std::int64_t{0})};
    if ((*entry)->value("processId", "") == process_id)
      scan.own += (*entry)->value("change", std::int64_t{0});
  }
  remember_head(sku, scan.head);
  return {};
}

// The ledger from entry `after` on: what `process_id` took since.
Expected<MongoStore::LedgerScan> MongoStore::ledger_scan(const std::string& sku, std::int64_t after,
                                                         const std::string& process_id) {
  auto from =
      after == 0 ? find_by_id("stock_skus", sku) : find_by_id("stock_ledger", entry_id(sku, after));
  if (!from) return Unexpected{from.error()};
  if (!*from)
    return fail("store: the stock ledger of " + sku + " has no entry " + std::to_string(after));
  LedgerScan scan{{after, (*from)->value("reserved", std::int64_t{0})}, 0};
  if (auto followed = ledger_follow(sku, scan, process_id); !followed) {
    return Unexpected{followed.error()};
  }
  return scan;
}

// Adds entries until `process_id` holds `wanted` units of the SKU; with `stock`, refuses
// (the reservation is returned) when the units that others hold leave too few.
Expected<std::optional<Reservation>> MongoStore::ledger_settle(const std::string& sku,
                                                               const std::string& process_id,
                                                               std::int64_t wanted,
                                                               std::optional<std::int64_t> stock,
                                                               LedgerScan& scan) {
  for (int attempt = 0; attempt < kLedgerTries; ++attempt) {
    const std::int64_t change = wanted - scan.own;
    if (change == 0) return std::optional<Reservation>{};
    const std::int64_t reserved = scan.head.reserved + change;
    if (stock && change > 0 && reserved > *stock) {
      return std::optional<Reservation>{
          Reservation{false, sku, wanted, units_left(*stock, scan.head.reserved - scan.own)}};
    }
    const std::int64_t n = scan.head.n + 1;
    auto written = db_->write("insert", "stock_ledger",
                              {{"documents", json::array({{{"_id", entry_id(sku, n)},
                                                           {"sku", sku},
                                                           {"n", n},
                                                           {"reserved", reserved},
                                                           {"change", change},
                                                           {"processId", process_id}}})}});
    if (!written) return Unexpected{written.error()};
    if (!written->duplicate_key) {
      scan.head = {n, reserved};
      scan.own += change;
      remember_head(sku, scan.head);
      return std::optional<Reservation>{};
    }
    // Another writer's entry n went in first: read it (and any after it), then try again.
    if (auto followed = ledger_follow(sku, scan, process_id); !followed) {
      return Unexpected{followed.error()};
    }
  }
  return fail("store: the stock ledger of " + sku + " kept changing; try again");
}

// Records the line's intent (the first run does; a run again finds it): the SKU's entry
// before it, from which the ledger holds every unit the process took.
Expected<std::int64_t> MongoStore::take_intent(const std::string& process_id,
                                               const StockLine& line) {
  auto head = ledger_head(line.sku, true);
  if (!head) return Unexpected{head.error()};
  const std::string id = intent_id(process_id, line.sku);
  auto written = db_->write("insert", "stock_takes",
                            {{"documents", json::array({{{"_id", id},
                                                         {"processId", process_id},
                                                         {"sku", line.sku},
                                                         {"quantity", line.quantity},
                                                         {"after", head->n}}})}});
  if (!written) return Unexpected{written.error()};
  if (!written->duplicate_key) return head->n;
  auto earlier = find_by_id("stock_takes", id);
  if (!earlier) return Unexpected{earlier.error()};
  if (!*earlier) return fail("store: the stock of " + process_id + " changed meanwhile; try again");
  return (*earlier)->value("after", std::int64_t{0});
}

Expected<Reservation> MongoStore::reserve_stock(const std::string& process_id,
                                                const std::vector<StockLine>& lines) {
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  auto hold = find_by_id("stock_holds", process_id);
  if (!hold) return Unexpected{hold.error()};
  if (*hold) return Reservation{};  // run again: it keeps what it took the first time
  // In the order of their SKUs, so that two orders for the same SKUs meet at the first.
  std::vector<StockLine> sorted = lines;
  std::sort(sorted.begin(), sorted.end(),
            [](const StockLine& a, const StockLine& b) { return a.sku < b.sku; });
  std::vector<std::pair<std::string, std::int64_t>> started;  // SKU, its entry before
  std::optional<Reservation> refused;
  for (const auto& line : sorted) {
    auto after = take_intent(process_id, line);
    if (!after) return Unexpected{after.error()};
    started.emplace_back(line.sku, *after);
    auto scan = ledger_scan(line.sku, *after, process_id);
    if (!scan) return Unexpected{scan.error()};
    auto settled = ledger_settle(line.sku, process_id, line.quantity, line.stock, *scan);
    if (!settled) return Unexpected{settled.error()};
    if (*settled) {
      refused = **settled;
      break;
    }
  }
  if (!refused) {
    auto held =
        db_->write("insert", "stock_holds", {{"documents", json::array({{{"_id", process_id}}})}});
    if (!held) return Unexpected{held.error()};
    return Reservation{};
  }
  // Short of one SKU: what was taken of the others goes back before the intents go.
  json deletes = json::array();
  for (const auto& [sku, after] : started) {
    auto scan = ledger_scan(sku, after, process_id);
    if (!scan) return Unexpected{scan.error()};
    auto given = ledger_settle(sku, process_id, 0, std::nullopt, *scan);
    if (!given) return Unexpected{given.error()};
    deletes.push_back({{"q", {{"_id", intent_id(process_id, sku)}}}, {"limit", 1}});
  }
  auto dropped = db_->write("delete", "stock_takes", {{"deletes", deletes}});
  if (!dropped) return Unexpected{dropped.error()};
  return *refused;
}

Expected<std::map<std::string, std::int64_t>> MongoStore::reserved_stock(
    const std::vector<std::string>& skus, const std::string& except_process) {
  std::vector<std::string> wanted = skus;
  if (wanted.empty()) {
    // Every SKU: those with a ledger, and those only an earlier version's lines name.
    auto listed = db_->find("stock_skus", json::object(), json::object(),
                            [&](json& doc) { wanted.push_back(doc.value("_id", "")); });
    if (!listed) return Unexpected{listed.error()};
    auto earlier = db_->aggregate("stock_lines", json::array({{{"$group", {{"_id", "$sku"}}}}}),
                                  [&](json& row) {
                                    if (row["_id"].is_string()) wanted.push_back(row["_id"]);
                                  });
    if (!earlier) return Unexpected{earlier.error()};
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  }
  bool held = false;
  if (!except_process.empty()) {
    auto hold = find_by_id("stock_holds", except_process);
    if (!hold) return Unexpected{hold.error()};
    held = hold->has_value();
  }
  std::map<std::string, std::int64_t> out;
  for (const auto& sku : wanted) {
    std::int64_t own = 0;
    std::optional<LedgerHead> head;
    if (!except_process.empty()) {
      auto intent = find_by_id("stock_takes", intent_id(except_process, sku));
      if (!intent) return Unexpected{intent.error()};
      if (*intent && held) {
        own = (*intent)->value("quantity", std::int64_t{0});
      } else if (*intent) {
        auto scan = ledger_scan(sku, (*intent)->value("after", std::int64_t{0}), except_process);
        if (!scan) return Unexpected{scan.error()};
        own = scan->own;
        head = scan->head;
      }
    }
    if (!head) {
      auto found = ledger_head(sku, false);
      if (!found) return Unexpected{found.error()};
      head = *found;
    }
    if (const std::int64_t others = head->reserved - own; others > 0) out[sku] = others;
  }
  return out;
}

}  // namespace stargate::server
