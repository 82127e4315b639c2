// The CLI's commands as plain functions over the daemon client and the output; main.cpp
// maps the command line onto these. Each returns an exit code (exit_codes.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/daemon_client.hpp"
#include "cli/output.hpp"
#include "shared/duration.hpp"

namespace stargate::cli {

struct Context {
  DaemonClient client;
  Output out;
};

struct SubmitOptions {
  std::string type;
  std::string data;       // --data JSON
  std::string data_file;  // --data-file FILE, or "-" for stdin
  std::string id;         // --id
  bool wait = false;
  std::optional<Duration> timeout;
};

// process_commands.cpp: one process at a time.
int submit(Context& ctx, const SubmitOptions& options);
int status(Context& ctx, const std::string& id);
int wait(Context& ctx, const std::vector<std::string>& ids, std::optional<Duration> timeout);
// Prints the result JSON alone (completed); exit 4 with the error when it failed.
int result(Context& ctx, const std::string& id);
int retry(Context& ctx, const std::string& id);
int cancel(Context& ctx, const std::string& id);

struct ListOptions {
  std::string state;
  std::string type;
  int limit = 50;
};

// queue_commands.cpp: overviews.
int list(Context& ctx, const ListOptions& options);
// What waits to be sent, oldest first (as mailq shows mail); with `flush`, send it now.
int queue(Context& ctx, bool flush);
// The daemon's health; exit 1 when it reports itself degraded.
int health(Context& ctx);
// For shell completion: local ids ("ids") or process types ("types"), one per line.
int complete(Context& ctx, const std::string& what);

// Shared by the commands: turn a daemon answer or a connection failure into a message and
// an exit code.
int report(Context& ctx, const Reply& reply, const std::string& id = "");
int unreachable(Context& ctx, const ConnectError& error);
bool valid_id(Context& ctx, const std::string& id);

// Reads --data / --data-file into a JSON object; the error names the source, line and column.
Expected<nlohmann::json> read_data(const SubmitOptions& options);

}  // namespace stargate::cli
