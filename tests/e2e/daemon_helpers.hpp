// Shared by the daemon's end-to-end tests (daemon_test.cpp, daemon_operations_test.cpp): an
// order, submitting and reading records through the socket API, and a quick stack.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <string>

#include "tests/e2e/orders.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {

// Submits through the socket API; the daemon's answer.
inline httplib::Result submit(httplib::Client& client, const std::string& id,
                              const std::string& type = "order") {
  return client.Post(
      "/v1/processes",
      nlohmann::json{
          {"processType", type}, {"clientProcessId", id}, {"data", nlohmann::json::parse(kOrder)}}
          .dump(),
      "application/json");
}

// The daemon's record of `id`; null when there is none.
inline nlohmann::json record(httplib::Client& client, const std::string& id) {
  auto res = client.Get("/v1/processes/" + id);
  return res && res->status == 200 ? nlohmann::json::parse(res->body) : nlohmann::json();
}

// Short order steps and no rate limit to speak of.
inline StackOptions fast_stack() {
  StackOptions options;
  options.step_duration = "20ms";
  options.server_extra = "[rate_limit]\nper_minute = 1000000\nburst = 100000\n";
  return options;
}

}  // namespace stargate::test
