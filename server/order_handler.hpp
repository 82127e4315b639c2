// The built-in `order` process type: validate, inventory_check, reserve, confirm.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "server/handler.hpp"

namespace stargate::server {

struct OrderSettings {
  Duration step_duration = std::chrono::seconds(2);
  // Units in stock per SKU; SKUs not listed have default_stock units.
  std::map<std::string, std::int64_t> stock;
  std::int64_t default_stock = 1000;
};

class OrderHandler final : public Handler {
 public:
  explicit OrderHandler(OrderSettings settings) : settings_(std::move(settings)) {}
  HandlerOutcome run(const HandlerInput& input, HandlerContext& context) override;

 private:
  OrderSettings settings_;
};

}  // namespace stargate::server
