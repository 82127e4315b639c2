// The order handler. Its data is {orderId, items: [{sku, quantity}]} (seed 000 §11).
#include "server/order_handler.hpp"

#include <array>

namespace stargate::server {
namespace {

struct Item {
  std::string sku;
  std::int64_t quantity = 0;
};

HandlerOutcome invalid(const std::string& message) {
  return HandlerOutcome::failure({"INVALID_ORDER", message, nlohmann::json::object()}, false);
}

// "TRACK-" and the digits of the process id: stable when the process is run again.
std::string tracking_number(const std::string& process_id) {
  std::string digits;
  for (const char c : process_id) {
    if (c >= '0' && c <= '9') digits += c;
  }
  return "TRACK-" + digits;
}

}  // namespace

HandlerOutcome OrderHandler::run(const HandlerInput& input, HandlerContext& context) {
  context.progress(10, "validate");
  if (!context.pause(settings_.step_duration)) return HandlerOutcome::stopped();
  const auto& data = input.data;
  const auto order_id = data.find("orderId");
  if (order_id == data.end() || !order_id->is_string() ||
      order_id->get_ref<const std::string&>().empty()) {
    return invalid("data.orderId must be a non-empty string");
  }
  const auto items_it = data.find("items");
  if (items_it == data.end() || !items_it->is_array() || items_it->empty()) {
    return invalid("data.items must be a non-empty array");
  }
  std::vector<Item> items;
  for (const auto& entry : *items_it) {
    const auto sku = entry.is_object() ? entry.find("sku") : entry.end();
    const auto quantity = entry.is_object() ? entry.find("quantity") : entry.end();
    if (!entry.is_object() || sku == entry.end() || !sku->is_string() || quantity == entry.end() ||
        !quantity->is_number_integer() || quantity->get<std::int64_t>() <= 0) {
      return invalid("each item needs a string sku and a positive integer quantity");
    }
    items.push_back({sku->get<std::string>(), quantity->get<std::int64_t>()});
  }

  context.progress(30, "inventory_check");
  if (!context.pause(settings_.step_duration)) return HandlerOutcome::stopped();
  for (const auto& item : items) {
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

  context.progress(60, "reserve");
  if (!context.pause(settings_.step_duration)) return HandlerOutcome::stopped();
  context.progress(90, "confirm");
  if (!context.pause(settings_.step_duration)) return HandlerOutcome::stopped();

  // Delivery three days after today, at midnight UTC.
  const auto today = std::chrono::floor<std::chrono::days>(now_utc());
  const TimePoint delivery = today + std::chrono::days(3);
  return HandlerOutcome::success({
      {"orderId", *order_id},
      {"status", "confirmed"},
      {"trackingNumber", tracking_number(input.process_id)},
      {"estimatedDelivery", format_timestamp(delivery)},
  });
}

}  // namespace stargate::server
