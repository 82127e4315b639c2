// Running another program under control: input on its stdin, its stdout read line by line,
// stderr kept (bounded), a time limit after which its whole process group is stopped
// (SIGTERM, then SIGKILL), and a way to stop it early. Used by the server's exec handlers and
// the daemon's on_complete hooks. Never raises SIGPIPE in the caller.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/duration.hpp"

namespace stargate {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0] is an absolute path; no shell is involved
  // NAME=VALUE entries added to (or replacing in) the caller's environment.
  std::vector<std::string> environment;
  std::string input;  // written to its stdin, which is then closed
  Duration timeout = std::chrono::minutes(5);
  Duration kill_grace = std::chrono::seconds(5);  // between SIGTERM and SIGKILL
  std::size_t max_output_bytes = 1 << 20;         // stdout beyond this stops the program
  std::size_t max_error_bytes = 64 * 1024;        // stderr kept; the rest is dropped
  // Called for every complete line of stdout (without its newline).
  std::function<void(std::string_view line)> on_line;
  // Asked about ten times a second; returning false stops the program.
  std::function<bool()> keep_going;
};

struct SubprocessResult {
  enum class Kind {
    kExited,         // exit_code is valid
    kSignaled,       // killed by `signal` (not by us)
    kTimedOut,       // stopped by us at the time limit
    kStopped,        // stopped by us because keep_going() said so
    kTooMuchOutput,  // stopped by us: more than max_output_bytes on stdout
    kSpawnFailed,    // never ran; `error` says why
  } kind = Kind::kSpawnFailed;
  int exit_code = -1;
  int signal = 0;
  std::string last_line;  // the last non-empty line of stdout
  std::string errors;     // stderr, up to max_error_bytes
  std::string error;      // why it could not be started
};

SubprocessResult run_subprocess(const SubprocessOptions& options);

}  // namespace stargate
