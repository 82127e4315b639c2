// What the scale-out end-to-end tests share: their order, a token and a submission through
// a given gateway, and a process's status as a gateway answers it.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <string>

#include "tests/support/stack.hpp"

namespace stargate::test {

// A scale-out stack of two gateways and two workers with no daemon: the tests talk HTTP to
// the gateways themselves. Each step of an order takes `step_duration`.
inline StackOptions without_daemon(const std::string& step_duration = "100ms") {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  options.step_duration = step_duration;
  return options;
}

// Two units of SKU-001.
inline constexpr const char* kTwoUnits =
    R"({"orderId":"ORD-1","items":[{"sku":"SKU-001","quantity":2}]})";

inline std::string token_at(Stack& stack, int port) {
  httplib::Client http("127.0.0.1", port);
  auto res = http.Post("/oauth/token",
                       "grant_type=client_credentials&client_id=" + stack.client_id() +
                           "&client_secret=" + stack.client_secret(),
                       "application/x-www-form-urlencoded");
  if (!res || res->status != 200) return "";
  return nlohmann::json::parse(res->body)["access_token"];
}

inline httplib::Result submit_to(int port, const std::string& bearer, const std::string& key,
                                 const std::string& data = kTwoUnits) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(20, 0);
  httplib::Headers headers = {{"Authorization", "Bearer " + bearer}};
  if (!key.empty()) headers.emplace("Idempotency-Key", key);
  return http.Post(
      "/api/stargate/processes", headers,
      R"({"clientProcessId":"c-)" + key + R"(","processType":"order","data":)" + data + "}",
      "application/json");
}

inline nlohmann::json status_at(int port, const std::string& bearer, const std::string& id) {
  httplib::Client http("127.0.0.1", port);
  auto res = http.Get("/api/stargate/processes/" + id, {{"Authorization", "Bearer " + bearer}});
  if (!res || res->status != 200) return nlohmann::json::object();
  return nlohmann::json::parse(res->body);
}

inline bool completed_at(int port, const std::string& bearer, const std::string& id) {
  return status_at(port, bearer, id).value("status", "") == "completed";
}

}  // namespace stargate::test
