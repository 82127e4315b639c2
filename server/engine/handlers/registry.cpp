#include "server/engine/handlers/registry.hpp"

#include "server/engine/handlers/exec_handler.hpp"

namespace stargate::server {

const std::vector<HandlerKind>& handler_kinds() {
  static const std::vector<HandlerKind> kinds = {
      {"order", false,
       [](const ProcessTypeConfig&, const HandlerEnvironment& env) -> std::shared_ptr<Handler> {
         return std::make_shared<OrderHandler>(env.order, env.store);
       }},
      {"shipping", false,
       [](const ProcessTypeConfig&, const HandlerEnvironment& env) -> std::shared_ptr<Handler> {
         return std::make_shared<ShippingHandler>(env.shipping);
       }},
      {"exec", true,
       [](const ProcessTypeConfig& type, const HandlerEnvironment&) -> std::shared_ptr<Handler> {
         return std::make_shared<ExecHandler>(ExecSettings{type.command, type.timeout});
       }},
  };
  return kinds;
}

const HandlerKind* find_handler_kind(std::string_view name) {
  for (const auto& kind : handler_kinds()) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

std::string handler_kind_names() {
  const auto& kinds = handler_kinds();
  std::string text;
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    if (i > 0) text += i + 1 == kinds.size() ? " or " : ", ";
    text += kinds[i].name;
  }
  return text;
}

std::map<std::string, std::shared_ptr<Handler>> make_handlers(
    const std::map<std::string, ProcessTypeConfig>& types, const HandlerEnvironment& env) {
  std::map<std::string, std::shared_ptr<Handler>> handlers;
  for (const auto& [name, type] : types) {
    if (const auto* kind = find_handler_kind(type.handler)) handlers[name] = kind->make(type, env);
  }
  return handlers;
}

}  // namespace stargate::server
