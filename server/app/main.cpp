// stargate-server: parses the command line and hands over to serve.cpp.
#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "server/app/serve.hpp"
#include "shared/logging.hpp"
#include "shared/version.hpp"

int main(int argc, char** argv) {
  using namespace stargate;
  CLI::App app{"stargate-server: the reference StarGate gateway and process engine"};
  app.set_version_flag("--version", std::string(version()));
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 success, 1 error, 2 usage error.\n"
      "See stargate-server(8).");
  std::string log_format = "text", log_level = "info";
  app.add_option("--log-format", log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  auto* level_option =
      app.add_option("--log-level", log_level,
                     "trace, debug, info, warn, error (default: [log] level, else info)")
          ->check(CLI::IsMember(
              std::vector<std::string>(std::begin(kLogLevels), std::end(kLogLevels))));

  server::ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve", "Run the gateway and the engine");
  serve_cmd->add_option("--config,-c", serve.config_path, "server.toml (defaults apply without)")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--listen", serve.listen, "HOST:PORT to listen on (overrides the config)");
  serve_cmd->add_option("--port-file", serve.port_file,
                        "Write the bound port to this file once listening (useful with port 0)");

  server::ServeOptions gateway;
  gateway.role = server::Role::kGateway;
  auto* gateway_cmd = app.add_subcommand(
      "gateway", "Run only the HTTP gateway (scale-out: [store] backend = \"redis+mongo\")");
  gateway_cmd->add_option("--config,-c", gateway.config_path, "server.toml")
      ->check(CLI::ExistingFile)
      ->required();
  gateway_cmd->add_option("--listen", gateway.listen,
                          "HOST:PORT to listen on (overrides the config)");
  gateway_cmd->add_option("--port-file", gateway.port_file,
                          "Write the bound port to this file once listening");
  server::ServeOptions worker;
  worker.role = server::Role::kWorker;
  auto* worker_cmd = app.add_subcommand(
      "worker", "Run only engine workers; listens on nothing (scale-out: redis+mongo)");
  worker_cmd->add_option("--config,-c", worker.config_path, "server.toml")
      ->check(CLI::ExistingFile)
      ->required();

  auto* client_cmd = app.add_subcommand("client", "Manage OAuth2 clients");
  client_cmd->require_subcommand(1);
  server::ClientAddOptions add;
  std::string types;
  auto* add_cmd = client_cmd->add_subcommand("add", "Create a client; print its id and secret");
  add_cmd->add_option("--config,-c", add.config_path, "server.toml")->check(CLI::ExistingFile);
  add_cmd->add_option("--tenant", add.tenant, "Tenant the client belongs to")->required();
  add_cmd->add_option("--process-types", types, "Comma-separated process types it may use")
      ->required();
  add_cmd->add_option("--secret-file", add.secret_file,
                      "Write the secret to this new file (mode 0600) instead of stdout");
  add_cmd->add_flag("--json", add.json, "Print JSON");
  std::string list_config;
  bool list_json = false;
  auto* list_cmd = client_cmd->add_subcommand("list", "List clients");
  list_cmd->add_option("--config,-c", list_config, "server.toml")->check(CLI::ExistingFile);
  list_cmd->add_flag("--json", list_json, "Print JSON");
  std::string revoke_config, revoke_id;
  auto* revoke_cmd = client_cmd->add_subcommand("revoke", "Revoke a client and all its tokens");
  revoke_cmd->add_option("--config,-c", revoke_config, "server.toml")->check(CLI::ExistingFile);
  revoke_cmd->add_option("CLIENT_ID", revoke_id, "The client to revoke")->required();

  server::ClientRotateOptions rotate;
  auto* rotate_cmd = client_cmd->add_subcommand(
      "rotate", "Give a client a new secret; the old one stays accepted for the grace");
  rotate_cmd->add_option("--config,-c", rotate.config_path, "server.toml")
      ->check(CLI::ExistingFile);
  rotate_cmd->add_option("CLIENT_ID", rotate.client_id, "The client to rotate")->required();
  rotate_cmd
      ->add_option("--grace", rotate.grace,
                   "How long the old secret stays accepted (0s: not at all; at most 720h)")
      ->capture_default_str();
  rotate_cmd->add_option("--secret-file", rotate.secret_file,
                         "Write the new secret to this new file (mode 0600) instead of stdout");
  rotate_cmd->add_flag("--json", rotate.json, "Print JSON");

  auto* audit_cmd = app.add_subcommand("audit", "Check or export the audit trail");
  audit_cmd->require_subcommand(1);
  std::string audit_config, since;
  auto* verify_cmd = audit_cmd->add_subcommand("verify", "Check the hash chain (exit 1 if broken)");
  verify_cmd->add_option("--config,-c", audit_config, "server.toml")->check(CLI::ExistingFile);
  auto* export_cmd = audit_cmd->add_subcommand("export", "Print records as JSON lines");
  export_cmd->add_option("--config,-c", audit_config, "server.toml")->check(CLI::ExistingFile);
  export_cmd->add_option("--since", since, "RFC 3339 time, or a duration ago such as 24h")
      ->required();

  std::string stock_config;
  bool stock_json = false;
  auto* stock_cmd = app.add_subcommand(
      "stock", "Show the order handler's stock: configured, reserved, available");
  stock_cmd->add_option("--config,-c", stock_config, "server.toml")->check(CLI::ExistingFile);
  stock_cmd->add_flag("--json", stock_json, "Print JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "stargate-server: %s\nRun 'stargate-server --help' for usage.\n",
                 e.what());
    return 2;
  }

  LogOptions logging{*parse_log_format(log_format), log_level, "stargate-server"};
  if (auto ok = setup_logging(logging); !ok) {
    std::fprintf(stderr, "stargate-server: %s\n", ok.error().c_str());
    return 2;
  }
  try {
    const bool level_given = level_option->count() > 0;
    for (auto* options : {&serve, &gateway, &worker})
      options->log_level_given = level_given;
    if (serve_cmd->parsed()) return server::serve(serve);
    if (gateway_cmd->parsed()) return server::serve(gateway);
    if (worker_cmd->parsed()) return server::serve(worker);
    if (add_cmd->parsed()) {
      for (std::size_t start = 0; start <= types.size();) {
        const auto comma = types.find(',', start);
        const auto end = comma == std::string::npos ? types.size() : comma;
        if (end > start) add.process_types.push_back(types.substr(start, end - start));
        start = end + 1;
      }
      if (add.process_types.empty()) {
        std::fprintf(stderr, "stargate-server: --process-types: give at least one type\n");
        return 2;
      }
      return server::client_add(add);
    }
    if (list_cmd->parsed()) return server::client_list(list_config, list_json);
    if (revoke_cmd->parsed()) return server::client_revoke(revoke_config, revoke_id);
    if (rotate_cmd->parsed()) return server::client_rotate(rotate);
    if (verify_cmd->parsed()) return server::audit_verify(audit_config);
    if (export_cmd->parsed()) return server::audit_export(audit_config, since);
    if (stock_cmd->parsed()) return server::stock_list(stock_config, stock_json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stargate-server: %s\n", e.what());
    return 1;
  }
  return 2;
}
