// Tests of server/engine/handlers/builtin_handlers.cpp with a recording context and a real store.
#include "server/engine/handlers/builtin_handlers.hpp"

#include <gtest/gtest.h>

#include <cstdint>

#include "server/store/sqlite/sqlite_store.hpp"
#include "shared/sqlite.hpp"
#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

class Recorder final : public HandlerContext {
 public:
  void progress(int percent, const std::string& step) override {
    steps.push_back(step);
    last = percent;
  }
  bool pause(Duration) override { return !stop && ++pauses <= stop_after_pauses; }
  std::vector<std::string> steps;
  int last = 0;
  bool stop = false;
  int pauses = 0;
  int stop_after_pauses = 1000;  // the server stops at the pause after this many
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

nlohmann::json order_of(const std::string& sku, std::int64_t quantity) {
  return {{"orderId", "ORD-1"}, {"items", {{{"sku", sku}, {"quantity", quantity}}}}};
}

// The order handler keeps its reservations in a real store, in a file of its own.
class OrderHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = SqliteStore::open(dir_.file("store.db"));
    ASSERT_TRUE(opened) << opened.error();
    store_ = std::move(*opened);
    handler_ = std::make_unique<OrderHandler>(settings(), *store_);
  }
  HandlerOutcome run(const std::string& process_id, nlohmann::json data) {
    Recorder context;
    return handler_->run({process_id, "acme", "order", std::move(data)}, context);
  }

  test::TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<OrderHandler> handler_;
};

TEST_F(OrderHandlerTest, ConfirmsAnOrderStepByStep) {
  Recorder context;
  auto outcome = handler_->run(
      order({{"orderId", "ORD-12345"}, {"items", {{{"sku", "SKU-002"}, {"quantity", 10}}}}}),
      context);
  ASSERT_TRUE(outcome.ok) << outcome.error.message;
  EXPECT_EQ(context.steps,
            (std::vector<std::string>{"validate", "inventory_check", "reserve", "confirm"}));
  EXPECT_EQ(outcome.result["orderId"], "ORD-12345");
  EXPECT_EQ(outcome.result["status"], "confirmed");
  EXPECT_EQ(outcome.result["trackingNumber"], "TRACK-2026011400001");
  EXPECT_TRUE(parse_timestamp(outcome.result["estimatedDelivery"].get<std::string>()));
}

TEST_F(OrderHandlerTest, ShortStockIsARetryableFailureWithDetails) {
  auto outcome = run("PROC-20260114-00001", order_of("SKU-001", 10));
  ASSERT_FALSE(outcome.ok);
  EXPECT_TRUE(outcome.retryable);
  EXPECT_EQ(outcome.error.code, "INVENTORY_INSUFFICIENT");
  EXPECT_EQ(outcome.error.message, "Insufficient stock for SKU-001");
  EXPECT_EQ(outcome.error.details,
            (nlohmann::json{{"sku", "SKU-001"}, {"requested", 10}, {"available", 5}}));
}

TEST_F(OrderHandlerTest, ReservedUnitsAreGoneForTheNextOrder) {
  ASSERT_TRUE(run("PROC-20260114-00001", order_of("SKU-001", 3)).ok);
  auto second = run("PROC-20260114-00002", order_of("SKU-001", 3));
  ASSERT_FALSE(second.ok);
  EXPECT_EQ(second.error.details,
            (nlohmann::json{{"sku", "SKU-001"}, {"requested", 3}, {"available", 2}}));
  EXPECT_TRUE(run("PROC-20260114-00003", order_of("SKU-001", 2)).ok);
  EXPECT_EQ(*store_->reserved_stock({}, ""), (std::map<std::string, std::int64_t>{{"SKU-001", 5}}));
}

TEST_F(OrderHandlerTest, RunAgainAfterARestartItKeepsItsReservationAndTakesNoMore) {
  ASSERT_TRUE(run("PROC-20260114-00001", order_of("SKU-001", 5)).ok);
  // The same process run again from its start (the server was killed before it saved the
  // outcome): its own reservation does not count against it.
  auto again = run("PROC-20260114-00001", order_of("SKU-001", 5));
  ASSERT_TRUE(again.ok) << again.error.message;
  EXPECT_EQ(*store_->reserved_stock({"SKU-001"}, ""),
            (std::map<std::string, std::int64_t>{{"SKU-001", 5}}));
  EXPECT_TRUE(store_->reserved_stock({"SKU-001"}, "PROC-20260114-00001")->empty());
}

// Another program holds the store's write lock when the order reserves, and the server stops
// while the handler waits for the store: the process is interrupted (run again at the next
// start), not failed, and nothing is reserved.
TEST_F(OrderHandlerTest, AStoreThatCannotBeWrittenWhileStoppingInterruptsTheOrder) {
  db::Database holder(dir_.file("store.db"));
  holder.exec("BEGIN IMMEDIATE");
  Recorder context;
  context.stop_after_pauses = 3;  // the three step pauses up to reserve, then it stops
  auto outcome =
      handler_->run({"PROC-20260114-00001", "acme", "order", order_of("SKU-001", 1)}, context);
  EXPECT_TRUE(outcome.interrupted) << outcome.error.code << ": " << outcome.error.message;
  holder.exec("ROLLBACK");
  EXPECT_TRUE(store_->reserved_stock({}, "")->empty());
}

TEST_F(OrderHandlerTest, ASkuNamedTwiceCountsOnceWithBothQuantities) {
  auto outcome = run(
      "PROC-20260114-00001",
      {{"orderId", "O"},
       {"items", {{{"sku", "SKU-001"}, {"quantity", 3}}, {{"sku", "SKU-001"}, {"quantity", 3}}}}});
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error.details,
            (nlohmann::json{{"sku", "SKU-001"}, {"requested", 6}, {"available", 5}}));
  EXPECT_TRUE(store_->reserved_stock({}, "")->empty());  // all or nothing
}

TEST_F(OrderHandlerTest, MalformedOrdersFailForGood) {
  for (const auto& data :
       {nlohmann::json::object(), nlohmann::json{{"orderId", 5}},
        nlohmann::json{{"orderId", "O"}, {"items", nlohmann::json::array()}},
        nlohmann::json{{"orderId", "O"}, {"items", {{{"sku", "A"}}}}},
        nlohmann::json{{"orderId", "O"}, {"items", {{{"sku", ""}, {"quantity", 1}}}}},
        nlohmann::json{{"orderId", "O"}, {"items", {{{"sku", "A"}, {"quantity", -1}}}}},
        nlohmann::json{{"orderId", "O"}, {"items", {{{"sku", "A"}, {"quantity", 1.5}}}}},
        order_of("A", kMaxQuantity + 1), order_of("A", INT64_MAX),
        nlohmann::json{{"orderId", "O"}, {"items", {"text"}}}}) {
    auto outcome = run("PROC-20260114-00001", data);
    EXPECT_FALSE(outcome.ok) << data.dump();
    EXPECT_FALSE(outcome.retryable);
    EXPECT_EQ(outcome.error.code, "INVALID_ORDER");
  }
  EXPECT_TRUE(store_->reserved_stock({}, "")->empty());
}

TEST_F(OrderHandlerTest, StopsAtAStepBoundaryWhenTheServerStops) {
  Recorder context;
  context.stop = true;
  auto outcome = handler_->run(order({{"orderId", "O"}}), context);
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
