// The built-in process types of the reference server (INTERFACES.md): `order` (validate,
// inventory_check, reserve, confirm) and `shipping` (pack, dispatch, in_transit, delivered).
// Both are deterministic: run again from the start on the same input, they give the same
// result, which is what lets the engine resume them after a crash.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "server/engine/handler.hpp"
#include "server/store/store.hpp"

namespace stargate::server {

struct OrderSettings {
  Duration step_duration = std::chrono::seconds(2);
  // Units of each SKU there are to sell; SKUs not listed have default_stock units.
  std::map<std::string, std::int64_t> stock;
  std::int64_t default_stock = 1000;

  std::int64_t stock_of(const std::string& sku) const {
    const auto found = stock.find(sku);
    return found == stock.end() ? default_stock : found->second;
  }
  bool operator==(const OrderSettings&) const = default;
};

// The largest quantity one order line may ask for.
inline constexpr std::int64_t kMaxQuantity = 1'000'000'000;

// Data {orderId, items: [{sku, quantity}]} (seed 000 §11). Result {orderId,
// status: "confirmed", trackingNumber, estimatedDelivery}. The reserve step takes the units
// from the stock for good (kept in the store, so they count across restarts);
// INVENTORY_INSUFFICIENT (retryable, details {sku, requested, available}) when stock is
// short.
class OrderHandler final : public Handler {
 public:
  OrderHandler(OrderSettings settings, StockStore& store)
      : settings_(std::move(settings)), store_(store) {}
  HandlerOutcome run(const HandlerInput& input, HandlerContext& context) override;

 private:
  OrderSettings settings_;
  StockStore& store_;
};

struct ShippingSettings {
  Duration step_duration = std::chrono::seconds(2);
  std::string carrier = "StarGate Logistics";
  bool operator==(const ShippingSettings&) const = default;
};

// Data {shipmentId, destination, items: [{sku, quantity}]}: send the items, track the
// shipment, report its delivery. Result {shipmentId, status: "delivered", carrier,
// trackingNumber, deliveredAt}.
class ShippingHandler final : public Handler {
 public:
  explicit ShippingHandler(ShippingSettings settings) : settings_(std::move(settings)) {}
  HandlerOutcome run(const HandlerInput& input, HandlerContext& context) override;

 private:
  ShippingSettings settings_;
};

}  // namespace stargate::server
