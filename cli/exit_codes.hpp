// The CLI's exit codes: a contract with scripts and cron (INTERFACES.md, stargate(1)).
#pragma once

namespace stargate::cli {

enum ExitCode : int {
  kExitOk = 0,             // success; a waited-for process completed
  kExitError = 1,          // any other error
  kExitUsage = 2,          // bad command line or input data
  kExitUnreachable = 3,    // the daemon's socket could not be used
  kExitProcessFailed = 4,  // the process failed, was rejected or cancelled
  kExitTimeout = 5,        // --timeout reached before the process ended
  kExitNoSuchProcess = 6,  // unknown process id
};

}  // namespace stargate::cli
