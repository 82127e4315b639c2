// The order and shipping handlers.
#include "server/engine/handlers/builtin_handlers.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>

namespace stargate::server {
namespace {

struct Item {
  std::string sku;
  std::int64_t quantity = 0;
};

HandlerOutcome invalid(const char* code, const std::string& message) {
  return HandlerOutcome::failure({code, message, nlohmann::json::object()}, false);
}

// A non-empty string field, or std::nullopt.
std::optional<std::string> text_field(const nlohmann::json& data, const char* name) {
  const auto it = data.find(name);
  if (it == data.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return std::nullopt;
  }
  return it->get<std::string>();
}

// data.items as [{sku, quantity > 0}]; std::nullopt when absent, empty or malformed.
std::optional<std::vector<Item>> items_of(const nlohmann::json& data) {
  const auto items = data.find("items");
  if (items == data.end() || !items->is_array() || items->empty()) return std::nullopt;
  std::vector<Item> out;
  for (const auto& entry : *items) {
    if (!entry.is_object()) return std::nullopt;
    const auto sku = entry.find("sku");
    const auto quantity = entry.find("quantity");
    if (sku == entry.end() || !sku->is_string() || sku->get_ref<const std::string&>().empty() ||
        quantity == entry.end() || !quantity->is_number_integer() ||
        quantity->get<std::int64_t>() <= 0 || quantity->get<std::int64_t>() > kMaxQuantity) {
      return std::nullopt;
    }
    out.push_back({sku->get<std::string>(), quantity->get<std::int64_t>()});
  }
  return out;
}

// "<prefix>-" and the digits of the process id: stable when the process is run again.
std::string tracking_number(const char* prefix, const std::string& process_id) {
  std::string digits;
  for (const char c : process_id) {
    if (c >= '0' && c <= '9') digits += c;
  }
  return std::string(prefix) + "-" + digits;
}

// Reports a step and lets it take its time; false when the server is stopping.
bool step(HandlerContext& context, int percent, const char* name, Duration duration) {
  context.progress(percent, name);
  return context.pause(duration);
}

// The order's lines, one per SKU (quantities of a SKU named twice added up), with the stock
// each may draw on.
std::vector<StockLine> stock_lines(const std::vector<Item>& items, const OrderSettings& settings) {
  std::map<std::string, std::int64_t> wanted;
  for (const auto& item : items)
    wanted[item.sku] += item.quantity;  // at most 1e9 each: no overflow for any real order
  std::vector<StockLine> lines;
  for (const auto& [sku, quantity] : wanted)
    lines.push_back({sku, quantity, settings.stock_of(sku)});
  return lines;
}

HandlerOutcome short_of(const std::string& sku, std::int64_t requested, std::int64_t available) {
  return HandlerOutcome::failure(
      {"INVENTORY_INSUFFICIENT",
       "Insufficient stock for " + sku,
       {{"sku", sku}, {"requested", requested}, {"available", available}}},
      true);
}

// Runs a store call, trying again for a few seconds while the store fails (locked, say).
// std::nullopt when the server stops meanwhile.
template <typename F>
auto with_store(HandlerContext& context, F&& call) -> std::optional<decltype(call())> {
  auto result = call();
  for (int attempt = 1; !result && attempt < 5; ++attempt) {
    if (!context.pause(std::chrono::seconds(1))) return std::nullopt;
    result = call();
  }
  return result;
}

// The store kept failing: the detail goes to the log, the client gets a reason it can act
// on (retry), not the database's words.
HandlerOutcome store_failed(const std::string& process_id, const std::string& why) {
  spdlog::error("process {}: stock: {}", process_id, why);
  return HandlerOutcome::failure(
      {"SERVICE_UNAVAILABLE", "Stock could not be checked just now; retry the process", {}}, true);
}

TimePoint days_from_today(int days) {
  return std::chrono::floor<std::chrono::days>(now_utc()) + std::chrono::days(days);
}

}  // namespace

HandlerOutcome OrderHandler::run(const HandlerInput& input, HandlerContext& context) {
  const auto pause = settings_.step_duration;
  if (!step(context, 10, "validate", pause)) return HandlerOutcome::stopped();
  const auto order_id = text_field(input.data, "orderId");
  if (!order_id) return invalid("INVALID_ORDER", "data.orderId must be a non-empty string");
  const auto items = items_of(input.data);
  if (!items) {
    return invalid("INVALID_ORDER", "data.items must be a non-empty array of {sku, quantity > 0}");
  }

  const auto lines = stock_lines(*items, settings_);

  if (!step(context, 30, "inventory_check", pause)) return HandlerOutcome::stopped();
  std::vector<std::string> skus;
  for (const auto& line : lines)
    skus.push_back(line.sku);
  // What other orders hold; a run again after a restart does not count its own reservation.
  auto held = with_store(context, [&] { return store_.reserved_stock(skus, input.process_id); });
  if (!held) return HandlerOutcome::stopped();
  if (!*held) return store_failed(input.process_id, held->error());
  for (const auto& line : lines) {
    const auto taken = (*held)->find(line.sku);
    const std::int64_t available =
        units_left(line.stock, taken == (*held)->end() ? 0 : taken->second);
    if (line.quantity > available) return short_of(line.sku, line.quantity, available);
  }

  if (!step(context, 60, "reserve", pause)) return HandlerOutcome::stopped();
  // Checked again atomically: another order may have taken units since the check.
  auto reserved =
      with_store(context, [&] { return store_.reserve_stock(input.process_id, lines); });
  if (!reserved) return HandlerOutcome::stopped();
  if (!*reserved) return store_failed(input.process_id, reserved->error());
  const Reservation& outcome = **reserved;
  if (!outcome.reserved) return short_of(outcome.sku, outcome.requested, outcome.available);
  if (!step(context, 90, "confirm", pause)) return HandlerOutcome::stopped();
  return HandlerOutcome::success({
      {"orderId", *order_id},
      {"status", "confirmed"},
      {"trackingNumber", tracking_number("TRACK", input.process_id)},
      {"estimatedDelivery", format_timestamp(days_from_today(3))},
  });
}

HandlerOutcome ShippingHandler::run(const HandlerInput& input, HandlerContext& context) {
  const auto pause = settings_.step_duration;
  if (!step(context, 10, "pack", pause)) return HandlerOutcome::stopped();
  const auto shipment_id = text_field(input.data, "shipmentId");
  if (!shipment_id) {
    return invalid("INVALID_SHIPMENT", "data.shipmentId must be a non-empty string");
  }
  if (!text_field(input.data, "destination")) {
    return invalid("INVALID_SHIPMENT", "data.destination must be a non-empty string");
  }
  if (!items_of(input.data)) {
    return invalid("INVALID_SHIPMENT",
                   "data.items must be a non-empty array of {sku, quantity > 0}");
  }
  if (!step(context, 40, "dispatch", pause)) return HandlerOutcome::stopped();
  if (!step(context, 70, "in_transit", pause)) return HandlerOutcome::stopped();
  if (!step(context, 95, "delivered", pause)) return HandlerOutcome::stopped();
  return HandlerOutcome::success({
      {"shipmentId", *shipment_id},
      {"status", "delivered"},
      {"carrier", settings_.carrier},
      {"trackingNumber", tracking_number("SHIP", input.process_id)},
      {"deliveredAt", format_timestamp(days_from_today(0))},
  });
}

}  // namespace stargate::server
