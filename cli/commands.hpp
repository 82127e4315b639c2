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

int submit(Context& ctx, const SubmitOptions& options);
int status(Context& ctx, const std::string& id);
int wait(Context& ctx, const std::vector<std::string>& ids, std::optional<Duration> timeout);

// Reads --data / --data-file into a JSON object; the error names the source, line and column.
Expected<nlohmann::json> read_data(const SubmitOptions& options);

}  // namespace stargate::cli
