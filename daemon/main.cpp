// stargated: parses flags and runs the daemon (daemon.cpp).
#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "daemon/daemon.hpp"
#include "shared/logging.hpp"
#include "shared/paths.hpp"
#include "shared/version.hpp"

int main(int argc, char** argv) {
  using namespace stargate;
  daemon::DaemonOptions options;
  options.config_path = default_daemon_config_path();
  CLI::App app{
      "stargated: the StarGate daemon. Queues local requests durably, submits them to the "
      "gateway in order, polls them to the end and keeps their results."};
  app.set_version_flag("--version", std::string(version()));
  app.footer(
      "Exit status: 0 clean stop or valid configuration, 1 error, 2 usage error.\n"
      "See stargated(8) and stargated.toml(5).");
  app.add_option("--config,-c", options.config_path, "Configuration file")->capture_default_str();
  app.add_flag("--check-config", options.check_config,
               "Validate the configuration (and the secret file), then exit");
  app.add_option("--socket", options.socket_path, "Socket path (overrides [socket] path)");
  app.add_option("--log-format", options.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error")
      ->check(
          CLI::IsMember(std::vector<std::string>(std::begin(kLogLevels), std::end(kLogLevels))));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "stargated: %s\nRun 'stargated --help' for usage.\n", e.what());
    return 2;
  }
  try {
    return daemon::run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stargated: fatal: %s\n", e.what());
    return 1;
  }
}
