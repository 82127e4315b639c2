// The order and shipping handlers.
#include "server/builtin_handlers.hpp"

#include <optional>
#include <vector>

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
    if (sku == entry.end() || !sku->is_string() || quantity == entry.end() ||
        !quantity->is_number_integer() || quantity->get<std::int64_t>() <= 0) {
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

  if (!step(context, 30, "inventory_check", pause)) return HandlerOutcome::stopped();
  for (const auto& item : *items) {
    const auto found = settings_.stock.find(item.sku);
    const std::int64_t available =
        found == settings_.stock.end() ? settings_.default_stock : found->second;
    if (item.quantity > available) {
      return HandlerOutcome::failure(
          {"INVENTORY_INSUFFICIENT",
           "Insufficient stock for " + item.sku,
           {{"sku", item.sku}, {"requested", item.quantity}, {"available", available}}},
          true);
    }
  }
  if (!step(context, 60, "reserve", pause)) return HandlerOutcome::stopped();
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
