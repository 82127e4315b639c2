// Tests of server/builtin_handlers.cpp with a recording context.
#include "server/builtin_handlers.hpp"

#include <gtest/gtest.h>

namespace stargate::server {
namespace {

class Recorder final : public HandlerContext {
 public:
  void progress(int percent, const std::string& step) override {
    steps.push_back(step);
    last = percent;
  }
  bool pause(Duration) override { return !stop; }
  std::vector<std::string> steps;
  int last = 0;
  bool stop = false;
};

HandlerInput order(nlohmann::json data) {
  return {"PROC-20260114-00001", "acme", "order", std::move(data)};
}

OrderSettings settings() {
  OrderSettings s;
  s.step_duration = Duration::zero();
  s.stock = {{"SKU-001", 5}};
  return s;
}

TEST(OrderHandler, ConfirmsAnOrderStepByStep) {
  OrderHandler handler(settings());
  Recorder context;
  auto outcome = handler.run(
      order({{"orderId", "ORD-12345"}, {"items", {{{"sku", "SKU-002"}, {"quantity", 10}}}}}),
      context);
  ASSERT_TRUE(outcome.ok);
  EXPECT_EQ(context.steps,
            (std::vector<std::string>{"validate", "inventory_check", "reserve", "confirm"}));
  EXPECT_EQ(outcome.result["orderId"], "ORD-12345");
  EXPECT_EQ(outcome.result["status"], "confirmed");
  EXPECT_EQ(outcome.result["trackingNumber"], "TRACK-2026011400001");
  EXPECT_TRUE(parse_timestamp(outcome.result["estimatedDelivery"].get<std::string>()));
}

TEST(OrderHandler, ShortStockIsARetryableFailureWithDetails) {
  OrderHandler handler(settings());
  Recorder context;
  auto outcome = handler.run(
      order({{"orderId", "ORD-1"}, {"items", {{{"sku", "SKU-001"}, {"quantity", 10}}}}}), context);
  ASSERT_FALSE(outcome.ok);
  EXPECT_TRUE(outcome.retryable);
  EXPECT_EQ(outcome.error.code, "INVENTORY_INSUFFICIENT");
  EXPECT_EQ(outcome.error.message, "Insufficient stock for SKU-001");
  EXPECT_EQ(outcome.error.details,
            (nlohmann::json{{"sku", "SKU-001"}, {"requested", 10}, {"available", 5}}));
}

TEST(OrderHandler, MalformedOrdersFailForGood) {
  OrderHandler handler(settings());
  for (const auto& data :
       {nlohmann::json::object(), nlohmann::json{{"orderId", 5}},
        nlohmann::json{{"orderId", "O"}, {"items", nlohmann::json::array()}},
        nlohmann::json{{"orderId", "O"}, {"items", {{{"sku", "A"}}}}},
        nlohmann::json{{"orderId", "O"}, {"items", {{{"sku", "A"}, {"quantity", -1}}}}},
        nlohmann::json{{"orderId", "O"}, {"items", {{{"sku", "A"}, {"quantity", 1.5}}}}},
        nlohmann::json{{"orderId", "O"}, {"items", {"text"}}}}) {
    Recorder context;
    auto outcome = handler.run(order(data), context);
    EXPECT_FALSE(outcome.ok) << data.dump();
    EXPECT_FALSE(outcome.retryable);
    EXPECT_EQ(outcome.error.code, "INVALID_ORDER");
  }
}

TEST(OrderHandler, StopsAtAStepBoundaryWhenTheServerStops) {
  OrderHandler handler(settings());
  Recorder context;
  context.stop = true;
  auto outcome = handler.run(order({{"orderId", "O"}}), context);
  EXPECT_TRUE(outcome.interrupted);
}

TEST(ShippingHandler, DeliversStepByStep) {
  ShippingHandler handler({Duration::zero(), "Acme Freight"});
  Recorder context;
  auto outcome = handler.run({"PROC-20260114-00002",
                              "acme",
                              "shipping",
                              {{"shipmentId", "SHP-1"},
                               {"destination", "Rue de la Paix 1, Paris"},
                               {"items", {{{"sku", "SKU-001"}, {"quantity", 2}}}}}},
                             context);
  ASSERT_TRUE(outcome.ok) << outcome.error.message;
  EXPECT_EQ(context.steps,
            (std::vector<std::string>{"pack", "dispatch", "in_transit", "delivered"}));
  EXPECT_EQ(outcome.result["shipmentId"], "SHP-1");
  EXPECT_EQ(outcome.result["status"], "delivered");
  EXPECT_EQ(outcome.result["carrier"], "Acme Freight");
  EXPECT_EQ(outcome.result["trackingNumber"], "SHIP-2026011400002");
}

TEST(ShippingHandler, MalformedShipmentsFailForGood) {
  ShippingHandler handler({Duration::zero(), "c"});
  for (const auto& data : {nlohmann::json::object(), nlohmann::json{{"shipmentId", "S"}},
                           nlohmann::json{{"shipmentId", "S"}, {"destination", "D"}},
                           nlohmann::json{{"shipmentId", "S"},
                                          {"destination", 5},
                                          {"items", {{{"sku", "A"}, {"quantity", 1}}}}}}) {
    Recorder context;
    auto outcome = handler.run({"P", "acme", "shipping", data}, context);
    EXPECT_FALSE(outcome.ok) << data.dump();
    EXPECT_EQ(outcome.error.code, "INVALID_SHIPMENT");
    EXPECT_FALSE(outcome.retryable);
  }
}

}  // namespace
}  // namespace stargate::server
