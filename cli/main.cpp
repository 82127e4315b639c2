// stargate: the operator's CLI. This file is the command table; the commands live in
// process_commands.cpp and queue_commands.cpp and talk to stargated through
// daemon_client.cpp.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "shared/paths.hpp"
#include "shared/version.hpp"

namespace {

constexpr const char* kExitCodes =
    "Exit status:\n"
    "  0  success (a waited-for process completed)\n"
    "  1  other error (health: stargated is degraded)\n"
    "  2  usage error or malformed data\n"
    "  3  stargated unreachable (not running, or no permission on its socket)\n"
    "  4  the process failed, was rejected or cancelled\n"
    "  5  --timeout reached\n"
    "  6  no such process\n"
    "Environment: STARGATE_SOCKET (socket path), NO_COLOR. See stargate(1).";

// Parses a --timeout value; CLI11 reports the message as a usage error.
std::string check_duration(const std::string& text) {
  auto parsed = stargate::parse_duration(text);
  return parsed ? std::string() : parsed.error();
}

// One line per visible command, "COMMAND --option ...", after the global options as
// "- --option ...": what the completion scripts must offer.
void print_command_table(CLI::App& app) {
  const auto long_options = [](const CLI::App& command) {
    std::string line;
    for (const CLI::Option* option : command.get_options()) {
      if (option->get_positional()) continue;
      for (const auto& name : option->get_lnames())
        line += " --" + name;
      for (const auto& name : option->get_snames())
        line += " -" + name;
    }
    return line;
  };
  std::printf("-%s\n", long_options(app).c_str());
  for (const CLI::App* command : app.get_subcommands({})) {
    if (command->get_group().empty()) continue;  // hidden
    std::printf("%s%s\n", command->get_name().c_str(), long_options(*command).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace stargate;
  using namespace stargate::cli;

  CLI::App app{"stargate: submit and follow StarGate processes through the local stargated"};
  app.set_version_flag("--version", std::string(version()));
  app.require_subcommand(1);
  app.footer(kExitCodes);
  std::string socket = default_socket_path();
  bool json = false, quiet = false;
  app.add_option("--socket", socket,
                 "stargated's socket (default: $STARGATE_SOCKET or " + socket + ")");
  app.add_flag("--json", json, "Print one JSON document on stdout");
  app.add_flag("--quiet,-q", quiet, "Print nothing but results and errors");

  SubmitOptions submit_options;
  std::string submit_timeout;
  auto* submit_cmd = app.add_subcommand("submit", "Queue a request for a process of TYPE");
  submit_cmd->add_option("TYPE", submit_options.type, "Process type, e.g. order")->required();
  auto* data_opt = submit_cmd->add_option("--data", submit_options.data, "The data as JSON");
  submit_cmd
      ->add_option("--data-file", submit_options.data_file,
                   "Read the data from FILE ('-' for standard input)")
      ->excludes(data_opt);
  submit_cmd->add_option("--id", submit_options.id,
                         "Your own clientProcessId (default: a new UUID)");
  submit_cmd->add_flag("--wait", submit_options.wait, "Follow the process to its end");
  submit_cmd->add_option("--timeout", submit_timeout, "Stop waiting after DUR (90s, 15m, 2h)")
      ->check(check_duration);

  std::string id;
  auto* status_cmd = app.add_subcommand("status", "Show a process");
  status_cmd->add_option("ID", id, "clientProcessId")->required();

  std::vector<std::string> wait_ids;
  std::string wait_timeout;
  auto* wait_cmd = app.add_subcommand("wait", "Wait until processes end");
  wait_cmd->add_option("ID", wait_ids, "clientProcessIds")->required();
  wait_cmd->add_option("--timeout", wait_timeout, "Stop waiting after DUR (90s, 15m, 2h)")
      ->check(check_duration);

  ListOptions list_options;
  auto* list_cmd = app.add_subcommand("list", "List processes, newest first");
  list_cmd->add_option("--state", list_options.state,
                       "queued, accepted, processing, completed, failed, rejected, cancelled");
  list_cmd->add_option("--type", list_options.type, "Only this process type");
  list_cmd->add_option("--limit", list_options.limit, "At most N (default 50)")
      ->check(CLI::Range(1, 10000));

  auto* result_cmd = app.add_subcommand("result", "Print the result JSON of a completed process");
  result_cmd->add_option("ID", id, "clientProcessId")->required();
  auto* retry_cmd = app.add_subcommand("retry", "Start a new attempt of a retryable failure");
  retry_cmd->add_option("ID", id, "clientProcessId")->required();
  auto* cancel_cmd = app.add_subcommand("cancel", "Withdraw a request still queued");
  cancel_cmd->add_option("ID", id, "clientProcessId")->required();

  std::string queue_action;
  auto* queue_cmd =
      app.add_subcommand("queue", "Show what waits to be sent; 'queue flush' sends now");
  queue_cmd->add_option("ACTION", queue_action, "flush")->check(CLI::IsMember({"flush"}));
  auto* health_cmd = app.add_subcommand("health", "Show the daemon's health (exit 1: degraded)");

  // For the bash completion script: not shown in --help.
  std::string complete_what;
  auto* complete_cmd = app.add_subcommand("__complete", "");
  complete_cmd->group("");
  complete_cmd->add_option("WHAT", complete_what)
      ->check(CLI::IsMember({"ids", "types"}))
      ->required();

  // The command table itself, for the test that keeps the completion scripts in step with
  // it: not shown in --help.
  auto* commands_cmd = app.add_subcommand("__commands", "");
  commands_cmd->group("");

  for (auto* sub : {submit_cmd, status_cmd, wait_cmd, list_cmd, result_cmd, retry_cmd, cancel_cmd,
                    queue_cmd, health_cmd}) {
    sub->footer(kExitCodes);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "stargate: %s\nRun 'stargate --help' for usage.\n", e.what());
    return kExitUsage;
  }

  if (commands_cmd->parsed()) {
    print_command_table(app);
    return kExitOk;
  }
  const auto timeout = [](const std::string& text) -> std::optional<Duration> {
    if (text.empty()) return std::nullopt;
    return *parse_duration(text);  // validated by check_duration
  };
  Context ctx{DaemonClient(socket), Output(json, quiet)};
  try {
    if (submit_cmd->parsed()) {
      submit_options.timeout = timeout(submit_timeout);
      return submit(ctx, submit_options);
    }
    if (status_cmd->parsed()) return status(ctx, id);
    if (wait_cmd->parsed()) return wait(ctx, wait_ids, timeout(wait_timeout));
    if (list_cmd->parsed()) return list(ctx, list_options);
    if (result_cmd->parsed()) return result(ctx, id);
    if (retry_cmd->parsed()) return retry(ctx, id);
    if (cancel_cmd->parsed()) return cancel(ctx, id);
    if (queue_cmd->parsed()) return queue(ctx, queue_action == "flush");
    if (health_cmd->parsed()) return health(ctx);
    if (complete_cmd->parsed()) return complete(ctx, complete_what);
  } catch (const std::exception& e) {
    ctx.out.error(e.what());
    return kExitError;
  }
  return kExitUsage;
}
