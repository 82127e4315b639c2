// stargated's life: load the configuration, open the queue, serve the socket, dispatch, and
// stop cleanly on SIGTERM. main() only parses flags and calls run().
#pragma once

#include <string>

namespace stargate::daemon {

struct DaemonOptions {
  std::string config_path;
  std::string socket_path;  // overrides [socket] path when not empty
  std::string log_format = "text";
  std::string log_level;  // overrides [log] level when not empty
  bool check_config = false;
};

// Returns the process exit code: 0 after a clean stop, 1 on a startup failure.
int run(const DaemonOptions& options);

}  // namespace stargate::daemon
