// The handlers a process type may name in server.toml, in one table: the configuration
// checks a type's handler against it, and the engine's handlers are made from it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/engine/handler.hpp"
#include "server/engine/handlers/builtin_handlers.hpp"
#include "server/store/store.hpp"

namespace stargate::server {

// One [process_types.<name>] table.
struct ProcessTypeConfig {
  std::string handler;  // a name of handler_kinds()
  Duration expected_duration = std::chrono::minutes(10);
  std::vector<std::string> command;            // exec: the program and its arguments
  Duration timeout = std::chrono::minutes(5);  // exec: then it is stopped
  bool operator==(const ProcessTypeConfig&) const = default;
};

// What the built-in handlers are configured with ([order], [shipping]) and may use.
struct HandlerEnvironment {
  const OrderSettings& order;
  const ShippingSettings& shipping;
  StockStore& store;
};

struct HandlerKind {
  std::string_view name;
  bool runs_command;  // needs command = [...] (and may have a timeout)
  std::shared_ptr<Handler> (*make)(const ProcessTypeConfig& type, const HandlerEnvironment& env);
};

const std::vector<HandlerKind>& handler_kinds();
// nullptr for a name that is not in the table.
const HandlerKind* find_handler_kind(std::string_view name);
// "order, shipping or exec", for error messages.
std::string handler_kind_names();

// A handler for every process type, by type name; types with an unknown handler are left
// out (the configuration refuses them before this runs).
std::map<std::string, std::shared_ptr<Handler>> make_handlers(
    const std::map<std::string, ProcessTypeConfig>& types, const HandlerEnvironment& env);

}  // namespace stargate::server
